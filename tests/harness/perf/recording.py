"""Recording's cost (`scripts/bench --only recording`): Asterisk's CPU with MixMonitor,
without it, and the baseline's, under the same load in the same run.

A 112 centre records every answered call (dialplans/extensions_112.conf, [record-112]: one
MixMonitor on the operator's channel from the answer on); the baseline (Answer and Queue)
records nothing. So the load phase runs three times, each on a centre of its own: ours as
shipped, ours with `recording.enabled = false`, and the baseline; and Asterisk's CPU of
each is reported with its ratio to the baseline's. What separates the first two ratios is
recording; what separates the second from 1 is the IVR path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from telephony.pbx.provision import AsteriskInstall
from tests.harness.perf import load, results
from tests.harness.perf.centre import Centre, Staff
from tests.harness.perf.pinning import Pinning, bench_on

UNRECORDED = ("recording.enabled=false",)
# (name, our service runs, overrides); the baseline is Answer and Queue without serve.
CENTRES: tuple[tuple[str, bool, Sequence[str]], ...] = (
    ("ours", True, ()),
    ("ours_unrecorded", True, UNRECORDED),
    ("baseline", False, ()),
)


def run(install: AsteriskInstall, work: Path, staff: Staff, calls: load.Load,
        pinning: Pinning | None = None) -> dict[str, Any]:  # fmt: skip
    phases: dict[str, Any] = {}
    with bench_on(pinning.load) if pinning is not None else contextlib.nullcontext():
        for name, served, overrides in CENTRES:
            with Centre(install, work / f"rec-{name}", staff, baseline=not served,
                        overrides=overrides, pinning=pinning) as centre:  # fmt: skip
                if served:
                    centre.serve("serve").ready()
                measured = load.run(centre, calls, work, f"recording-{name}").as_dict()
            phases[name] = {
                "calls": measured["calls"],
                "setup_ms": measured["setup_ms"],
                "usage": measured["usage"],
            }
    base = results.dig(phases["baseline"], "usage.asterisk.cpu_percent")
    return {
        "load": calls.as_dict(),
        "phases": phases,
        "cpu_asterisk_ratios": {
            name: results.ratio(results.dig(phases[name], "usage.asterisk.cpu_percent"), base)
            for name in ("ours", "ours_unrecorded")
        },
    }


def summary_line(found: dict[str, Any]) -> str:
    cpu = {name: results.dig(phase, "usage.asterisk.cpu_percent")
           for name, phase in found["phases"].items()}  # fmt: skip
    ratios = found["cpu_asterisk_ratios"]
    return (f"  recording: Asterisk CPU ours {cpu['ours']}% ({ratios['ours']}x the baseline), "
            f"without MixMonitor {cpu['ours_unrecorded']}% ({ratios['ours_unrecorded']}x), "
            f"baseline {cpu['baseline']}%")  # fmt: skip
