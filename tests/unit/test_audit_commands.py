from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from telephony import config as config_mod
from telephony import logs
from telephony.commands.audit import parse_time, register
from telephony.config import Config
from telephony.db import make_engine
from telephony.migrations import upgrade
from tests.harness.calls import (
    CALLER,
    KEY,
    T0,
    ami,
    answered_call_cel,
    caller_until_queued,
    record_live,
    rest_of_answered_call,
    write_cel,
)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="telephony")
    register(root.add_subparsers(dest="command", required=True))
    return root


def make_config(tmp_path: Path, url: str | None = None) -> Config:
    url = url or f"sqlite:///{tmp_path / 'audit.db'}"
    return config_mod.load(
        None,
        env={},
        overrides=[
            f"audit.database_url={url}",
            f"audit.spool_path={tmp_path / 'spool.jsonl'}",
            f"audit.checkpoint_path={tmp_path / 'checkpoints.jsonl'}",
            f"audit.checkpoint_key={KEY.decode()}",
            f"asterisk.runtime_dir={tmp_path / 'asterisk'}",
        ],
    )


def run(config: Config, *argv: str) -> int:
    """Like `telephony.cli.main`: logging as configured there for commands (JSON lines on
    stderr, the report on stdout), then the handler."""
    args = parser().parse_args(argv)
    logs.configure("info", "json", sys.stderr)
    status: int = args.handler(config, args)
    return status


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], level = saved
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


def record_answered_call(config: Config) -> None:
    engine = make_engine(config.audit.database_url)
    upgrade(engine)
    location = ami("UserEvent", 5, UserEvent="IVRLocation", Source="cell", RegencyCode="3171",
                   Lat="-6.2", Lon="106.8", Radius="500", CellId="510-10-1-2")  # fmt: skip
    frames = [*caller_until_queued(), location, *rest_of_answered_call()]
    record_live(engine, frames, Path(config.audit.checkpoint_path))
    engine.dispose()


def test_read_only_commands_on_a_fresh_database_say_no_calls(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "calls", "list") == 0
    assert run(config, "stats") == 0
    assert capsys.readouterr().out == "no calls\nno calls\n"
    assert run(config, "calls", "show", "1.1") == 1
    assert "no call 1.1" in capsys.readouterr().err
    assert run(config, "audit", "verify") == 0
    assert "audit chain OK: 0 events" in capsys.readouterr().out


def test_verify_names_the_first_bad_seq(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_answered_call(config)
    assert run(config, "audit", "verify") == 0
    assert "OK: 15 events, 1 checkpoints" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.execute("DROP TRIGGER audit_events_no_update")
        db.execute("UPDATE audit_events SET payload = '{}' WHERE seq = 7")
    assert run(config, "audit", "verify") == 1
    assert capsys.readouterr().out.startswith("audit chain BROKEN at seq 7: edited:")
    assert run(config, "audit", "verify", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["first_bad_seq"], report["problem"]) == (False, 7, "edited")


def test_reconcile_backfills_and_reports(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cel_csv = write_cel(tmp_path / "Master.csv", answered_call_cel())
    assert run(config, "audit", "reconcile", "--cel", str(cel_csv), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "1 finished calls checked" in out and "would backfill 10 events" in out
    assert run(config, "audit", "reconcile", "--cel", str(cel_csv), "--json") == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert '"event": "audit.reconcile_done"' in captured.err
    assert report["calls_missing"] == 1 and report["events_backfilled"] == 10
    assert report["differences"][0]["linkedid"] == CALLER
    assert run(config, "audit", "reconcile", "--cel", str(cel_csv)) == 0
    assert capsys.readouterr().out.endswith("no differences\n")
    assert run(config, "audit", "verify") == 0


def test_reconcile_defaults_to_the_sandbox_cel_file(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "audit", "reconcile") == 1
    assert "no CEL file at" in capsys.readouterr().err
    cel_dir = Path(config.asterisk.runtime_dir) / "log" / "cel-custom"
    cel_dir.mkdir(parents=True)
    write_cel(cel_dir / "Master.csv", answered_call_cel())
    assert run(config, "audit", "reconcile", "--since", T0.isoformat()) == 0
    assert "differences in 1 calls" in capsys.readouterr().out


def test_reconcile_waits_for_the_spool_to_be_replayed(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cel_csv = write_cel(tmp_path / "Master.csv", answered_call_cel())
    (tmp_path / "spool.jsonl").write_text('{"fields":[]}\n')
    assert run(config, "audit", "reconcile", "--cel", str(cel_csv)) == 1
    assert "still holds events" in capsys.readouterr().err
    assert run(config, "audit", "reconcile", "--cel", str(cel_csv), "--dry-run") == 0


def test_calls_list_filters_and_prints(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    record_answered_call(config)
    assert run(config, "calls", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["ARRIVED", "(UTC)", "LINKEDID"]
    assert lines[1].split() == [
        "2026-11-28", "21:16:36", CALLER, "081234567890", "3171", "fire", "answered", "14.0"
    ]  # fmt: skip
    assert run(config, "calls", "list", "--regency", "3171", "--outcome", "answered", "--json") == 0
    [call] = json.loads(capsys.readouterr().out)
    assert call["linkedid"] == CALLER and call["arrived_at"] == "2026-11-28T21:16:36Z"
    assert call["outcome"] == "answered" and call["answer_seconds"] == pytest.approx(14.0)
    assert run(config, "calls", "list", "--regency", "3273") == 0
    assert run(config, "calls", "list", "--since", "2026-11-29") == 0
    assert capsys.readouterr().out == "no calls\nno calls\n"


def test_calls_show_gives_location_ivr_legs_and_timeline(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(config.audit.database_url)
    upgrade(engine)
    record_live(engine, caller_until_queued(), tmp_path / "checkpoints.jsonl")
    engine.dispose()
    cel_csv = write_cel(tmp_path / "Master.csv", answered_call_cel())
    assert run(config, "audit", "reconcile", "--cel", str(cel_csv)) == 0
    capsys.readouterr()
    assert run(config, "calls", "show", CALLER) == 0
    out = capsys.readouterr().out
    assert "ivr choice  fire, language id" in out and "outcome     answered" in out
    legs = out.split("\nlegs\n")[1].split("\ntimeline\n")[0].splitlines()
    assert legs[1].split()[:3] == [CALLER, "caller", "PJSIP/trunk-mno"]
    assert legs[2].split()[-1] == "yes"
    timeline = out.split("\ntimeline\n")[1].splitlines()
    assert len(timeline) == 1 + 12 and "cel-backfill" in timeline[-1]
    assert "EmergencyType=fire" in out and "CELEventType=HANGUP" in out
    assert run(config, "calls", "show", CALLER, "--json") == 0
    detail = json.loads(capsys.readouterr().out)
    assert detail["call"]["emergency_type"] == "fire"
    assert {leg["uniqueid"]: leg["backfilled"] for leg in detail["legs"]} == {
        CALLER: True,
        "1795900596.3": True,
    }
    assert [e["source"] for e in detail["events"]].count("cel-backfill") == 8


def test_calls_show_prints_the_location(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    record_answered_call(config)
    assert run(config, "calls", "show", CALLER) == 0
    out = capsys.readouterr().out
    assert "location    cell at -6.20000,106.80000 ±500 m, cell 510-10-1-2; regency 3171" in out


def test_stats_per_regency_against_nena(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    record_answered_call(config)
    assert run(config, "stats") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == [
        "REGENCY", "OFFERED", "ANSWERED", "ABANDONED", "FAILED", "P50", "S", "P90", "S", "P95",
        "S", "<=10S", "<=15S", "<=20S", "NENA",
    ]  # fmt: skip
    assert out[2].split() == [
        "3171", "1", "1", "0", "0", "14.0", "14.0", "14.0", "0%", "100%", "100%", "met"
    ]  # fmt: skip
    assert out[3].split()[0] == "TOTAL"
    assert out[-1] == "NENA: 90% within 15 s and 95% within 20 s"
    assert run(config, "stats", "--since", "2026-11-28T00:00:00Z", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["since"] == "2026-11-28T00:00:00Z"
    [regency] = report["regencies"]
    assert regency["regency_code"] == "3171" and regency["within_s"] == {
        "10": 0.0,
        "15": 1.0,
        "20": 1.0,
    }
    assert regency["meets_nena"] is True


def test_times_without_a_zone_are_utc() -> None:
    assert parse_time("2026-11-28 21:16") == T0.replace(second=0)
    assert parse_time("2026-11-28T21:16:36Z") == T0
    with pytest.raises(argparse.ArgumentTypeError):
        parse_time("last tuesday")
    with pytest.raises(SystemExit):
        parser().parse_args(["stats", "--since", "soon"])


def test_an_unreachable_database_is_one_line_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(
        tmp_path, "postgresql+psycopg://telephony:hunter2@127.0.0.1:1/audit?connect_timeout=2"
    )
    assert run(config, "calls", "list") == 1
    err = capsys.readouterr().err
    assert err.startswith("telephony: audit database postgresql+psycopg://telephony:***@")
    assert "hunter2" not in err
