"""One bad frame cannot stop the audit (issue 12, 2 and 3), on SQLite and PostgreSQL.

Frames that cannot be records, break a column's contract or are refused by the database go
to the quarantine with their reason, once; the frames around them are written; the writer
thread lives on. The reader's queue is bounded and spills, in order, to a file.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from telephony.ami.frames import Frame
from telephony.ami.identity import Quarantined
from telephony.audit.intake import Intake
from telephony.audit.limits import MARKER
from telephony.audit.models import AuditEvent, Call
from telephony.audit.quarantine import read
from telephony.audit.verify import verify
from telephony.audit.writer import AuditWriter
from telephony.migrations import upgrade

KEY = b"quarantine-test-key"
BASE_NS = 1_796_000_000_000_000_000
_n = iter(range(1, 1_000_000))


def ev(name: str, linkedid: str, **fields: str) -> Frame:
    pairs = [("Event", name), ("Uniqueid", linkedid), ("Linkedid", linkedid), *fields.items()]
    return Frame(pairs, received_ns=BASE_NS + next(_n))


def writer_for(engine: Engine, tmp_path: Path, events: queue.Queue[Frame] | Intake) -> AuditWriter:
    return AuditWriter(engine, events, tmp_path / "spool.jsonl", tmp_path / "cp.jsonl", KEY,
                       quarantine_path=tmp_path / "quarantine.jsonl", retry_s=0.05)  # fmt: skip


def stored(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        rows = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        session.expunge_all()
    return rows


def test_unreadable_timestamps_do_not_kill_the_writer(engine: Engine, tmp_path: Path) -> None:
    events: queue.Queue[Frame] = queue.Queue()
    writer = writer_for(engine, tmp_path, events)
    writer.start()
    frames = [ev("Newchannel", "1.1", Timestamp="\u00b2", Channel="PJSIP/a-1"),
              ev("Newstate", "1.1", Timestamp="999999999999", ChannelState="6"),
              ev("Hangup", "1.1", Timestamp="1796000001.5", Cause="16")]  # fmt: skip
    for frame in frames:
        events.put(frame)
    deadline = time.monotonic() + 10
    while writer.metrics().events_written < 3:
        assert writer.metrics().alive, "the writer thread died"
        assert time.monotonic() < deadline, "the frames after the bad timestamps never came"
        time.sleep(0.02)
    writer.stop()
    rows = stored(engine)
    assert [r.type for r in rows] == ["Newchannel", "Newstate", "Hangup"]
    # Unreadable: the receipt time; readable: Asterisk's.
    assert rows[0].time.year == rows[1].time.year == 2026 and rows[2].time.microsecond == 500000


def test_a_frame_breaking_a_contract_is_quarantined_once_and_the_rest_written(
    engine: Engine, tmp_path: Path
) -> None:
    events: queue.Queue[Frame] = queue.Queue()
    writer = writer_for(engine, tmp_path, events)
    long_type = ev("X" * 100, "1.2")
    frames = [ev("Newchannel", "1.2", Channel="PJSIP/a-2", CallerIDNum="9" * 200),
              long_type, ev("Hangup", "1.2", Cause="16")]  # fmt: skip
    for frame in frames:
        events.put(frame)
    writer.start()
    writer.stop()
    assert [r.type for r in stored(engine)] == ["Newchannel", "Hangup"]
    (entry,) = read(tmp_path / "quarantine.jsonl")
    assert entry.reason.startswith("too-long: type") and entry.linkedid == "1.2"
    assert entry.parts[0] == long_type.fields
    assert writer.metrics().quarantined == 1 and writer.metrics().spool_backlog == 0
    with Session(engine) as session:
        call = session.get(Call, "1.2")
        assert call is not None and call.caller is not None
        # The projection's column contract: cut to its length, with the marker.
        assert len(call.caller) == 80 and call.caller.endswith(MARKER)
    assert verify(engine, tmp_path / "cp.jsonl", KEY).ok


def test_frames_without_channel_identity_never_enter_the_chain(
    engine: Engine, tmp_path: Path
) -> None:
    events: queue.Queue[Frame | Quarantined] = queue.Queue()
    writer = writer_for(engine, tmp_path, events)  # type: ignore[arg-type]
    cut = Frame([("Event", "Newchannel"), ("Channel", "PJSIP/a-3"), ("CallerIDNum", "0812")],
                BASE_NS + next(_n))  # fmt: skip
    forged = Frame([("Event", "UserEvent"), ("Linkedid", "fake-1")], BASE_NS + next(_n))
    events.put(cut)
    events.put(Quarantined((forged,), "split-frame-unresolved", "fake-1"))
    events.put(ev("Hangup", "1.3", Cause="16"))
    writer.start()
    writer.stop()
    assert [(r.type, r.linkedid) for r in stored(engine)] == [("Hangup", "1.3")]
    reasons = sorted(e.reason for e in read(tmp_path / "quarantine.jsonl"))
    assert reasons == ["no-identity", "split-frame-unresolved"]


@pytest.mark.postgres
def test_a_frame_postgres_refuses_is_quarantined_not_replayed_forever(
    postgres: Engine, tmp_path: Path
) -> None:
    # PostgreSQL text cannot hold NUL; SQLite can, so this one is PostgreSQL's own refusal
    # (of the projection's calls.caller: the event payload is JSON, where NUL is escaped).
    pg = postgres
    upgrade(pg)
    events: queue.Queue[Frame] = queue.Queue()
    writer = writer_for(pg, tmp_path, events)
    frames = [ev("Newchannel", "1.5", Channel="PJSIP/b-1", CallerIDNum="0812"),
              ev("Newchannel", "1.4", Channel="PJSIP/a-4", CallerIDNum="08\x0012"),
              ev("Hangup", "1.5", Cause="16")]  # fmt: skip
    for frame in frames:
        events.put(frame)
    writer.start()
    time.sleep(0.5)  # several retry periods: a replay loop would quarantine again
    writer.stop()
    assert [(r.type, r.linkedid) for r in stored(pg)] == [
        ("Newchannel", "1.5"), ("Hangup", "1.5")
    ]
    (entry,) = read(tmp_path / "quarantine.jsonl")
    assert entry.reason.startswith("refused: DataError")
    metrics = writer.metrics()
    assert (metrics.spool_backlog, metrics.db_available, metrics.quarantined) == (0, True, 1)


def test_the_reader_never_waits_and_overflow_keeps_arrival_order(tmp_path: Path) -> None:
    intake = Intake(tmp_path / "overflow.jsonl", maxsize=3)
    frames = [Frame([("Event", "E"), ("N", str(n))], BASE_NS + n) for n in range(20)]
    started = time.monotonic()
    for frame in frames[:10]:
        intake.put(frame)
    intake.put(Quarantined((frames[10],), "no-event"))
    for frame in frames[11:]:
        intake.put(frame)
    assert time.monotonic() - started < 1.0 and intake.depth == 20
    assert len((tmp_path / "overflow.jsonl").read_text().splitlines()) == 17
    out = [intake.get(timeout=0.1) for _ in range(20)]
    assert [o.parts[0] if isinstance(o, Quarantined) else o for o in out] == frames
    with pytest.raises(queue.Empty):
        intake.get_nowait()
    # Read back to its end, the file is empty and the queue takes frames again.
    assert (tmp_path / "overflow.jsonl").read_text() == ""
    intake.put(frames[0])
    assert intake.get_nowait() == frames[0]


def test_a_writer_behind_a_full_queue_writes_every_frame(engine: Engine, tmp_path: Path) -> None:
    intake = Intake(tmp_path / "overflow.jsonl", maxsize=5)
    frames = [ev("Newstate", f"2.{n}", ChannelState="6") for n in range(300)]
    def put_all() -> None:
        for frame in frames:
            intake.put(frame)

    putting = threading.Thread(target=put_all)
    putting.start()
    putting.join(5)
    writer = writer_for(engine, tmp_path, intake)
    writer.start()
    writer.stop()
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 300
    assert [r.linkedid for r in stored(engine)] == [f["Linkedid"] for f in frames]


def test_metrics_show_a_dead_or_stalled_writer(engine: Engine, tmp_path: Path) -> None:
    events: queue.Queue[Frame] = queue.Queue()
    writer = writer_for(engine, tmp_path, events)
    gate = threading.Event()
    original = writer._write  # the test holds the writer inside a commit

    def slow(items: object) -> object:
        gate.wait(10)
        return original(items)  # type: ignore[arg-type]

    writer._write = slow  # type: ignore[method-assign, assignment]
    writer.start()
    fields = [("Event", "Newchannel"), ("Uniqueid", "3.1"), ("Linkedid", "3.1")]
    events.put(Frame(fields, time.time_ns()))
    time.sleep(0.6)
    stalled = writer.metrics()
    assert stalled.alive and stalled.stalled_s >= 0.4 and stalled.lag_s >= 0.4
    gate.set()
    wait = time.monotonic() + 5
    while writer.metrics().events_written < 1:
        assert time.monotonic() < wait
        time.sleep(0.01)
    time.sleep(0.3)  # the writer is idle again
    assert writer.metrics().stalled_s == 0.0
    writer.stop()


def test_an_agent_complete_whose_channels_are_gone_enters_the_chain_unlinked(
    engine: Engine, tmp_path: Path
) -> None:
    # As Asterisk 22.10.1 sent it under load: the queue's fields, neither channel's snapshot.
    gone = Frame([("Event", "AgentComplete"), ("Privilege", "agent,all"),
                  ("Queue", "reg-3573"), ("Interface", "PJSIP/bop134"),
                  ("MemberName", "bop134"), ("HoldTime", "1"), ("TalkTime", "9"),
                  ("Reason", "caller")], BASE_NS + next(_n))  # fmt: skip
    # With a channel named but its ids missing, it is still quarantined.
    half = Frame([("Event", "AgentComplete"), ("Channel", "PJSIP/trunk-0001"),
                  ("Queue", "reg-3573"), ("MemberName", "bop135")], BASE_NS + next(_n))  # fmt: skip
    events: queue.Queue[Frame | Quarantined] = queue.Queue()
    writer = writer_for(engine, tmp_path, events)  # type: ignore[arg-type]
    events.put(gone)
    events.put(half)
    writer.start()
    writer.stop()
    assert [(r.type, r.linkedid) for r in stored(engine)] == [("AgentComplete", "")]
    assert [e.reason for e in read(tmp_path / "quarantine.jsonl")] == ["no-identity"]
    assert verify(engine, tmp_path / "cp.jsonl", KEY).ok


def test_a_console_action_about_no_call_enters_the_chain(engine: Engine, tmp_path: Path) -> None:
    # What Asterisk emits for the console's AMI UserEvent action at a login: no Channel, no ids.
    events: queue.Queue[Frame | Quarantined] = queue.Queue()
    writer = writer_for(engine, tmp_path, events)  # type: ignore[arg-type]
    login = Frame([("Event", "UserEvent"), ("Privilege", "user,all"),
                   ("UserEvent", "ConsoleAction"), ("Operation", "login"),
                   ("User", "op3578"), ("Client", "127.0.0.1")], BASE_NS + next(_n))  # fmt: skip
    # A handset fix no call claimed, sent by the console's AML desk the same way.
    fix = Frame([("Event", "UserEvent"), ("UserEvent", "AMLFix"), ("FixId", "7"),
                 ("Rejected", "")], BASE_NS + next(_n))
    # The same without the console's name is still a channel event missing its ids.
    other = Frame([("Event", "UserEvent"), ("UserEvent", "CallQueued")], BASE_NS + next(_n))
    events.put(login)
    events.put(fix)
    events.put(other)
    writer.start()
    writer.stop()
    assert [(r.type, r.linkedid) for r in stored(engine)] == [("UserEvent", ""),
                                                              ("UserEvent", "")]
    assert [e.reason for e in read(tmp_path / "quarantine.jsonl")] == ["no-identity"]
    assert verify(engine, tmp_path / "cp.jsonl", KEY).ok
