from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from telephony.ami.frames import Frame
from telephony.audit.cel import group_calls, parse_lines
from telephony.audit.models import AuditEvent, Call, CallLeg
from telephony.audit.projection import LegRole, Outcome
from telephony.audit.reconcile import (
    SOURCE,
    backfill_items,
    missing_records,
    reconcile,
    reconcile_on_connect,
)
from telephony.audit.store import lock_chain
from telephony.audit.verify import verify
from telephony.audit.writer import AuditWriter
from tests.harness.calls import (
    CALLER,
    KEY,
    LATER,
    OP,
    T0,
    answered_call_cel,
    caller_until_queued,
    cel,
    hangup_extra,
    record_live,
    rest_of_answered_call,
    write_cel,
)


def event_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_a_leg_missed_by_ami_is_backfilled_marked_and_chained(
    engine: Engine, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    record_live(engine, caller_until_queued(), checkpoints)
    cel_csv = write_cel(tmp_path / "Master.csv", answered_call_cel())

    report = reconcile(engine, cel_csv, now=LATER, tz=UTC)

    assert report.calls_checked == 1 and report.calls_in_progress == 0
    [difference] = report.differences
    assert not difference.call_missing
    assert difference.legs_missing == (OP,) and difference.legs_incomplete == (CALLER,)
    # Operator: start, answer, bridge in and out, hangup; caller: bridge in and out, hangup.
    assert difference.events == report.events_backfilled == 8
    with Session(engine) as session:
        call = session.get(Call, CALLER)
        assert call is not None and call.ended_at == T0 + timedelta(seconds=60)
        assert call.outcome is Outcome.ANSWERED and call.emergency_type == "fire"
        assert call.answered_at == T0 + timedelta(seconds=14)
        assert call.answer_seconds == pytest.approx(14.0)
        assert call.answering_operator == "PJSIP/op-test"
        legs = {leg.uniqueid: leg for leg in session.scalars(select(CallLeg))}
        assert legs[OP].backfilled and legs[OP].role is LegRole.OPERATOR
        assert legs[OP].hangup_cause == 16 and legs[OP].answered_at is not None
        assert legs[CALLER].backfilled and legs[CALLER].ended_at == call.ended_at
        backfilled = session.scalars(
            select(AuditEvent).where(AuditEvent.source == SOURCE).order_by(AuditEvent.seq)
        ).all()
    assert [e.seq for e in backfilled] == list(range(5, 13))
    assert [e.type for e in backfilled] == [
        "Newchannel", "Newstate", "BridgeEnter", "BridgeEnter", "BridgeLeave", "Hangup",
        "BridgeLeave", "Hangup",
    ]  # fmt: skip
    assert verify(engine, checkpoints, KEY).ok

    again = reconcile(engine, cel_csv, now=LATER, tz=UTC)
    assert again.clean and again.calls_checked == 1 and again.events_backfilled == 0
    assert event_count(engine) == 12


def test_an_answer_lost_in_a_gap_mid_call_changes_the_outcome(
    engine: Engine, tmp_path: Path
) -> None:
    # AMI came back before the end: it saw the hangups but not the operator answering.
    after_gap = rest_of_answered_call()[6:]
    assert [f.event for f in after_gap] == ["BridgeLeave", "Hangup", "BridgeLeave", "Hangup"]
    record_live(engine, caller_until_queued() + after_gap, tmp_path / "checkpoints.jsonl")
    with Session(engine) as session:
        call = session.get(Call, CALLER)
        assert call is not None and call.outcome is Outcome.ABANDONED_IN_QUEUE

    report = reconcile(
        engine, write_cel(tmp_path / "Master.csv", answered_call_cel()), now=LATER, tz=UTC
    )

    assert report.legs_incomplete == 2 and report.legs_missing == 0
    with Session(engine) as session:
        call = session.get(Call, CALLER)
        assert call is not None and call.outcome is Outcome.ANSWERED
        assert call.answered_at == T0 + timedelta(seconds=14)
        assert call.ended_at == T0 + timedelta(seconds=60)
        op = session.get(CallLeg, OP)
        assert op is not None and op.backfilled and op.role is LegRole.OPERATOR
    assert verify(engine, tmp_path / "checkpoints.jsonl", KEY).ok


def test_a_call_missed_entirely_is_built_from_cel(engine: Engine, tmp_path: Path) -> None:
    lines = [
        cel("CHAN_START", 0, CALLER),
        cel("ANSWER", 0, CALLER, app="Answer"),
        cel("STREAM_BEGIN", 11, CALLER, app="Queue", appdata="prov-35,,,,"),
        cel("HANGUP", 20, CALLER, extra=hangup_extra(16)),
        cel("CHAN_END", 20, CALLER),
        cel("LINKEDID_END", 20, CALLER),
    ]
    report = reconcile(engine, write_cel(tmp_path / "Master.csv", lines), now=LATER, tz=UTC)

    assert report.calls_missing == 1 and report.legs_missing == 1 and report.legs_incomplete == 0
    with Session(engine) as session:
        call = session.get(Call, CALLER)
        assert call is not None
        assert (call.caller, call.arrived_at) == ("081234567890", T0)
        assert call.ended_at == T0 + timedelta(seconds=20)
        assert call.queued_at == T0 + timedelta(seconds=11) and call.queue == "prov-35"
        assert call.outcome is Outcome.ABANDONED_IN_QUEUE and call.answered_at is None
        [leg] = session.scalars(select(CallLeg)).all()
        assert leg.backfilled and leg.role is LegRole.CALLER and leg.hangup_cause == 16
    assert verify(engine, tmp_path / "none.jsonl", KEY).ok


def test_a_failed_call_keeps_its_cause_in_the_outcome(engine: Engine, tmp_path: Path) -> None:
    lines = [
        cel("CHAN_START", 0, CALLER),
        cel("HANGUP", 1, CALLER, extra=hangup_extra(38)),
        cel("LINKEDID_END", 1, CALLER),
    ]
    reconcile(engine, write_cel(tmp_path / "Master.csv", lines), now=LATER, tz=UTC)
    with Session(engine) as session:
        call = session.get(Call, CALLER)
        assert call is not None and call.outcome is Outcome.FAILED


def test_a_fully_recorded_call_shows_no_difference(engine: Engine, tmp_path: Path) -> None:
    record_live(engine, caller_until_queued() + rest_of_answered_call(), tmp_path / "cp.jsonl")
    report = reconcile(
        engine, write_cel(tmp_path / "Master.csv", answered_call_cel()), now=LATER, tz=UTC
    )
    assert report.clean and report.calls_checked == 1 and report.events_backfilled == 0
    assert event_count(engine) == 14


def test_calls_in_progress_or_just_ended_are_not_judged(engine: Engine, tmp_path: Path) -> None:
    lines = answered_call_cel()
    unfinished = [line.replace(CALLER, "1795900700.9") for line in lines[:4]]
    cel_csv = write_cel(tmp_path / "Master.csv", [*lines, *unfinished])

    settling = reconcile(engine, cel_csv, now=T0 + timedelta(seconds=63), tz=UTC)
    assert settling.calls_checked == 0 and settling.calls_in_progress == 2
    assert event_count(engine) == 0

    settled = reconcile(engine, cel_csv, now=T0 + timedelta(seconds=70), tz=UTC)
    assert settled.calls_checked == 1 and settled.calls_in_progress == 1
    assert settled.calls_missing == 1


def test_since_leaves_older_calls_alone(engine: Engine, tmp_path: Path) -> None:
    cel_csv = write_cel(tmp_path / "Master.csv", answered_call_cel())
    report = reconcile(engine, cel_csv, since=T0 + timedelta(seconds=1), now=LATER, tz=UTC)
    assert report.calls_checked == 0 and report.clean and event_count(engine) == 0


def test_a_dry_run_reports_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    cel_csv = write_cel(tmp_path / "Master.csv", ["garbage\n", *answered_call_cel()])
    report = reconcile(engine, cel_csv, now=LATER, tz=UTC, dry_run=True)
    assert report.dry_run and report.cel_skipped == 1
    assert report.calls_missing == 1 and report.legs_missing == 2
    assert report.events_backfilled == 0 and report.differences[0].events == 10
    assert event_count(engine) == 0


def test_the_torn_last_line_is_left_for_next_time(engine: Engine, tmp_path: Path) -> None:
    lines = answered_call_cel()
    cel_csv = write_cel(tmp_path / "Master.csv", [*lines[:-1], lines[-1].rstrip("\n")])
    report = reconcile(engine, cel_csv, now=LATER, tz=UTC)
    assert report.cel_skipped == 0 and report.calls_in_progress == 1


def test_backfill_keys_are_the_same_on_every_run() -> None:
    [call] = group_calls(parse_lines(answered_call_cel(), UTC).records)
    records = missing_records(call, Counter())
    first = [r.event_key for r, _ in backfill_items(call, records)]
    assert first == [r.event_key for r, _ in backfill_items(call, records)]
    assert len(set(first)) == len(first) == 10


def test_reconcile_waits_for_the_chain_lock(engine: Engine, tmp_path: Path) -> None:
    cel_csv = write_cel(tmp_path / "Master.csv", answered_call_cel())
    done = threading.Event()

    def run() -> None:
        reconcile(engine, cel_csv, now=LATER, tz=UTC)
        done.set()

    with Session(engine) as holder, holder.begin():
        lock_chain(holder)
        worker = threading.Thread(target=run)
        worker.start()
        assert not done.wait(0.5), "reconcile appended while another appender held the chain"
    worker.join(10)
    assert done.is_set() and event_count(engine) == 10


def test_reconcile_on_connect_runs_on_the_writer_thread(engine: Engine, tmp_path: Path) -> None:
    events: queue.Queue[Frame] = queue.Queue()
    checkpoints = tmp_path / "checkpoints.jsonl"
    writer = AuditWriter(engine, events, tmp_path / "spool.jsonl", checkpoints, KEY)
    writer.start()
    for frame in caller_until_queued():
        events.put(frame)
    cel_csv = write_cel(tmp_path / "Master.csv", answered_call_cel())
    on_connect = reconcile_on_connect(
        writer, engine, cel_csv, settle_s=0.0, lookback=timedelta(days=36500)
    )
    on_connect()
    deadline = time.monotonic() + 10
    while writer.metrics().last_seq < 12:
        assert time.monotonic() < deadline, "the reconcile job never ran"
        time.sleep(0.02)
    writer.stop()
    report = verify(engine, checkpoints, KEY)
    assert report.ok and report.events_checked == 12 and report.checkpoints_checked >= 1
