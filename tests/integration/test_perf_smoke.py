"""A short smoke of scripts/bench and of two drills (AGI down, AMI cut), so that the suite
keeps the harness working. The real runs are `scripts/bench` and `scripts/drill`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from telephony.pbx.provision import AsteriskInstall
from tests.harness.perf import bench, capacity, drills, edge, ingest, recording, results
from tests.harness.perf.centre import Staff
from tests.harness.perf.load import Load
from tests.harness.perf.pinning import bench_on, split
from tests.harness.perf.verdict import Context

pytestmark = pytest.mark.asterisk

SMOKE = bench.Profile(
    "smoke",
    Staff(4, answer_ms=200, wrapup_s=1),
    Load(rate=4, calls=4, hold_s=2, key_share=1.0),
    capacity.Search(start_cps=1, window_s=1, hold_s=1, key_share=1.0, max_cps=1,
                    resolution_cps=1, max_steps=1),
    ingest_calls=20,
    edge_calls=10,
)  # fmt: skip


def test_bench_measures_ours_against_the_baseline(
    asterisk_install: AsteriskInstall, tmp_path: Path
) -> None:
    ours = bench.ours(asterisk_install, tmp_path, SMOKE)
    # The baseline pinned (scripts/bench --pin), and its capacity searched by our rule.
    pinned = split()
    with bench_on(pinned.load):
        base = bench.baseline(asterisk_install, tmp_path, SMOKE, pinned)
    base_capacity = bench.capacity_search(asterisk_install, tmp_path, SMOKE, base=True)
    flooded = ingest.flood(f"sqlite:///{tmp_path / 'ingest.db'}", tmp_path / "ingest", 20,
                           timeout_s=60)  # fmt: skip
    result: dict[str, Any] = {
        "schema": results.SCHEMA,
        "conditions": bench.conditions(SMOKE),
        "phases": {"ours": ours, "baseline": base},
        "ratios": bench.ratios(ours, base),
        "ingest": {"sqlite": flooded.as_dict()},
    }

    for phase in (ours, base):
        assert phase["calls"]["failed"] == 0, phase
        assert phase["setup_ms"]["count"] == 4
        assert phase["key_to_ring_s"]["count"] == 4, "every caller rang an operator"
    assert ours["agi_ms"]["count"] > 0 and ours["audit_lag_ms"]["count"] > 0
    assert ours["usage"]["serve"]["cpu_percent"] >= 0 and "serve" not in base["usage"]
    assert result["ratios"]["setup_p50"] > 0
    assert base_capacity["trials"] and base_capacity["trials"][0]["calls"] == 1
    assert {t.key for t in results.targets(result)} >= {"agi_p99", "setup_ratio_p99"}
    assert "INVITE->200" in bench.summary(result)
    json.dumps(result)


def test_bench_measures_the_edge_against_direct_in_one_centre(
    asterisk_install: AsteriskInstall, tmp_path: Path
) -> None:
    cost = edge.run(asterisk_install, tmp_path, SMOKE.edge_calls)
    assert cost["failed"] == {"edge": 0, "direct": 0}, cost
    assert cost["edge_ms"]["count"] == cost["direct_ms"]["count"] == SMOKE.edge_calls
    # 10 calls are below the 10 ms CPU tick: the figure is there, its size is the bench's.
    assert cost["ratios"]["p50"] > 0 and isinstance(cost["kamailio_cpu_ms_per_call"], float)
    result = {"edge": cost}
    assert {t.key for t in results.targets(result)} >= {"edge_ratio_p50", "edge_ratio_p95"}
    assert "edge: INVITE->200" in bench.summary({"phases": {}, **result})


def test_bench_measures_recording_against_the_unrecorded_and_the_baseline(
    asterisk_install: AsteriskInstall, tmp_path: Path
) -> None:
    found = recording.run(asterisk_install, tmp_path, SMOKE.staff, SMOKE.load)
    for name, phase in found["phases"].items():
        assert phase["calls"]["failed"] == 0 and phase["calls"]["unrung"] == 0, (name, phase)
    # Only our centres record: each answered call of ours left a recording, none unrecorded.
    assert len(list((tmp_path / "rec-ours").rglob("*.wav"))) == SMOKE.load.calls
    assert not list((tmp_path / "rec-ours_unrecorded").rglob("*.wav"))
    assert set(found["cpu_asterisk_ratios"]) == {"ours", "ours_unrecorded"}
    assert "without MixMonitor" in recording.summary_line(found)
    json.dumps(found)


def test_agi_down_and_ami_cut_drills_pass(
    asterisk_install: AsteriskInstall, tmp_path: Path
) -> None:
    ctx = Context(asterisk_install, tmp_path, quick=True, calls=4)

    down = drills.fail_open(ctx, "agi-down")
    cut = drills.ami_cut(ctx)

    assert down.passed, down.line()
    assert down.detail["calls"]["failed_open"] == down.detail["load"]["calls"]
    assert cut.passed, cut.line()
    assert cut.detail["audit"]["missing_after"] == 0
