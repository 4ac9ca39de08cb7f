from __future__ import annotations

import itertools
import queue
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from telephony.ami.frames import Frame
from telephony.audit.models import AuditEvent, Call, CallLeg
from telephony.audit.projection import LegRole, Outcome
from telephony.audit.verify import verify
from telephony.audit.writer import AuditWriter
from telephony.db import make_engine
from telephony.migrations import upgrade

KEY = b"writer-test-key"
BASE_NS = 1_740_816_000_000_000_000
L = "1740816000.10"
OP = "1740816000.11"
_stamps = itertools.count(1)


def ev(name: str, uniqueid: str = L, at_s: float = 0.0, **fields: str) -> Frame:
    stamp = BASE_NS + int(at_s * 1e9) + next(_stamps)
    pairs = [("Event", name), ("Uniqueid", uniqueid), ("Linkedid", L), *fields.items()]
    return Frame(pairs, received_ns=stamp)


def answered_call() -> list[Frame]:
    op = {"DestUniqueid": OP, "DestChannel": "PJSIP/op1001-0000000b", "DestLinkedid": L}
    return [
        ev("Newchannel", at_s=0, Channel="PJSIP/trunk-0000000a", CallerIDNum="+628123"),
        ev("UserEvent", at_s=5, UserEvent="IVRLocation", Source="cell", RegencyCode="3171"),
        ev("UserEvent", at_s=8, UserEvent="IVRChoice", EmergencyType="fire", Language="id"),
        ev("QueueCallerJoin", at_s=9, Queue="jakarta"),
        ev("Newchannel", OP, at_s=10, Channel="PJSIP/op1001-0000000b"),
        ev("AgentCalled", at_s=10, MemberName="op1001", **op),
        ev("DialEnd", at_s=13, DialStatus="ANSWER", **op),
        ev("QueueCallerLeave", at_s=13, Queue="jakarta"),
        ev("AgentConnect", at_s=13, MemberName="op1001", **op),
        ev("Hangup", OP, at_s=60, Cause="16"),
        ev("Hangup", at_s=60, Cause="16", **{"Cause-txt": "Normal Clearing"}),
    ]


class Switch:
    """A SQLite database that can be made unreachable, like a PostgreSQL server going away."""

    def __init__(self, path: Path) -> None:
        self.up = True
        self.path = path

    def connect(self) -> sqlite3.Connection:
        if not self.up:
            raise sqlite3.OperationalError("database is down")
        return sqlite3.connect(self.path, check_same_thread=False)


@pytest.fixture
def switch(tmp_path: Path) -> Switch:
    return Switch(tmp_path / "audit.db")


@pytest.fixture
def engine(switch: Switch) -> Iterator[Engine]:
    db = make_engine("sqlite://", creator=switch.connect, poolclass=NullPool)
    upgrade(db)
    yield db
    db.dispose()


def make_writer(
    engine: Engine, tmp_path: Path, events: queue.Queue[Frame], batch_size: int = 200
) -> AuditWriter:
    return AuditWriter(
        engine,
        events,
        tmp_path / "spool" / "audit.spool",
        tmp_path / "checkpoints.jsonl",
        KEY,
        checkpoint_every=5,
        retry_s=0.05,
        batch_size=batch_size,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def count_events(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_projects_a_call_and_chains_its_events(engine: Engine, tmp_path: Path) -> None:
    events: queue.Queue[Frame] = queue.Queue()
    writer = make_writer(engine, tmp_path, events)
    writer.start()
    for frame in answered_call():
        events.put(frame)
    writer.stop()
    with Session(engine) as session:
        call = session.get(Call, L)
        assert call is not None
        assert call.outcome is Outcome.ANSWERED and call.answer_seconds == pytest.approx(
            13, abs=0.01
        )
        assert (call.caller, call.regency_code, call.emergency_type) == ("+628123", "3171", "fire")
        assert call.answering_operator == "op1001" and call.ended_at is not None
        legs = {leg.uniqueid: leg for leg in session.scalars(select(CallLeg))}
        assert legs[L].role is LegRole.CALLER and legs[OP].role is LegRole.OPERATOR
        assert legs[L].hangup_cause_text == "Normal Clearing"
        types = session.scalars(select(AuditEvent.type).order_by(AuditEvent.seq)).all()
    assert types == [f.event for f in answered_call()]
    metrics = writer.metrics()
    assert metrics.events_written == 11 and metrics.last_seq == 11 and len(metrics.lag_ms) == 11
    report = verify(engine, tmp_path / "checkpoints.jsonl", KEY)
    assert report.ok and report.checkpoints_checked >= 1, report


def test_batches_up_to_batch_size(engine: Engine, tmp_path: Path) -> None:
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    events: queue.Queue[Frame] = queue.Queue()
    for i in range(450):
        events.put(ev("Newstate", f"1.{i}", ChannelState="6"))
    writer = make_writer(engine, tmp_path, events)
    writer.start()
    writer.stop()
    assert count_events(engine) == 450
    assert len(commits) == 3
    assert writer.metrics().events_written == 450


def test_spools_while_database_is_down_and_replays_in_order(
    engine: Engine, switch: Switch, tmp_path: Path
) -> None:
    events: queue.Queue[Frame] = queue.Queue()
    writer = make_writer(engine, tmp_path, events)
    writer.start()
    call = answered_call()
    for frame in call[:3]:
        events.put(frame)
    wait_for(lambda: writer.metrics().events_written == 3)
    switch.up = False
    for frame in call[3:8]:
        events.put(frame)
    wait_for(lambda: writer.metrics().spool_backlog == 5)
    assert not writer.metrics().db_available
    assert len((tmp_path / "spool" / "audit.spool").read_text().splitlines()) == 5
    switch.up = True
    for frame in call[8:]:
        events.put(frame)
    writer.stop()
    metrics = writer.metrics()
    assert (metrics.events_written, metrics.spool_backlog) == (11, 0)
    assert metrics.events_spooled >= 5
    with Session(engine) as session:
        types = session.scalars(select(AuditEvent.type).order_by(AuditEvent.seq)).all()
        stored_call = session.get(Call, L)
        assert stored_call is not None and stored_call.outcome is Outcome.ANSWERED
    assert types == [f.event for f in call]
    assert verify(engine, tmp_path / "checkpoints.jsonl", KEY).ok


def test_replay_after_crash_is_idempotent(engine: Engine, switch: Switch, tmp_path: Path) -> None:
    call = answered_call()
    events: queue.Queue[Frame] = queue.Queue()
    first = make_writer(engine, tmp_path, events)
    switch.up = False
    first.start()
    for frame in call:
        events.put(frame)
    wait_for(lambda: first.metrics().spool_backlog == len(call))
    spool = tmp_path / "spool" / "audit.spool"
    lines = spool.read_text()
    switch.up = True
    first.stop()
    assert count_events(engine) == len(call)
    # As if the process died after committing but before clearing the spool, mid-write.
    spool.write_text(lines + lines[:40])
    second = make_writer(engine, tmp_path, queue.Queue())
    assert second.metrics().spool_backlog == len(call)
    second.start()
    second.stop()
    metrics = second.metrics()
    assert (metrics.events_written, metrics.duplicates_skipped) == (0, len(call))
    assert metrics.spool_backlog == 0 and spool.read_text() == ""
    assert count_events(engine) == len(call)
    assert verify(engine, tmp_path / "checkpoints.jsonl", KEY).ok


def test_identical_frames_received_twice_are_both_kept(engine: Engine, tmp_path: Path) -> None:
    events: queue.Queue[Frame] = queue.Queue()
    writer = make_writer(engine, tmp_path, events)
    fields = [("Event", "DTMFEnd"), ("Uniqueid", L), ("Linkedid", L), ("Digit", "1")]
    events.put(Frame(fields, received_ns=BASE_NS + 1))
    events.put(Frame(fields, received_ns=BASE_NS + 2))
    writer.start()
    writer.stop()
    assert count_events(engine) == 2


def test_stop_with_database_down_keeps_everything(
    engine: Engine, switch: Switch, tmp_path: Path
) -> None:
    events: queue.Queue[Frame] = queue.Queue()
    writer = make_writer(engine, tmp_path, events)
    switch.up = False
    for frame in answered_call():
        events.put(frame)
    writer.start()
    writer.stop()
    assert writer.metrics().spool_backlog == 11
    lines = (tmp_path / "spool" / "audit.spool").read_text().splitlines()
    assert len(lines) == 11
