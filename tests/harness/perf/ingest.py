"""Audit ingest: a synthetic AMI event flood straight into the AuditWriter.

Whole calls' worth of realistic frames (trunk leg, IVR and queue user events, an operator
leg, hangups) are put on the writer's queue at once; the figure is events/s from the first
put to the commit of the last event. Zero loss is checked from the database itself (one row
per event put, nothing left in the spool) and the hash chain must verify.
"""

from __future__ import annotations

import queue
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from telephony.ami.frames import Frame
from telephony.audit import AuditEvent, AuditWriter, verify
from telephony.db import make_engine
from telephony.migrations import upgrade

EVENTS_PER_CALL = 12
POLL_S = 0.05


def call_frames(n: int, base_s: int) -> list[Frame]:
    """The AMI events of one answered 112 call (number ``n``), as Asterisk 22 sends them."""
    lid = f"{base_s}.{n * 2}"
    op = f"{base_s}.{n * 2 + 1}"
    trunk = f"PJSIP/trunk-mno-{n:08x}"
    agent = f"PJSIP/bop001-{n:08x}"
    caller = f"+62812{n % 10_000_000:07d}"

    def frame(event: str, uniqueid: str, **fields: str) -> Frame:
        return Frame([("Event", event), ("Channel", agent if uniqueid == op else trunk),
                      ("Uniqueid", uniqueid), ("Linkedid", lid), *fields.items()])  # fmt: skip

    dest = {"DestUniqueid": op, "DestChannel": agent, "DestLinkedid": lid}
    return [
        frame("Newchannel", lid, CallerIDNum=caller, Exten="112", Context="from-trunk-112"),
        frame("UserEvent", lid, UserEvent="IVRChoice", Digit="1", EmergencyType="police"),
        frame("UserEvent", lid, UserEvent="IVRLocation", CallerE164=caller, Source="cell",
              RegencyCode="35.73"),
        frame("UserEvent", lid, UserEvent="CallQueued", Queue="reg-3573",
              EmergencyType="police", Language="id", Priority="10"),
        frame("QueueCallerJoin", lid, Queue="reg-3573", Position="1", Count="1"),
        frame("Newchannel", op, CallerIDNum="bop001", Exten="s", Context="from-operator-112"),
        frame("AgentCalled", lid, Queue="reg-3573", MemberName="bop001", **dest),
        frame("DialEnd", lid, DialStatus="ANSWER", **dest),
        frame("QueueCallerLeave", lid, Queue="reg-3573", Position="1", Count="0"),
        frame("AgentConnect", lid, Queue="reg-3573", MemberName="bop001", HoldTime="2", **dest),
        frame("Hangup", op, Cause="16", **{"Cause-txt": "Normal Clearing"}),
        frame("Hangup", lid, Cause="16", **{"Cause-txt": "Normal Clearing"}),
    ]


@dataclass(frozen=True)
class Ingest:
    database: str
    events: int
    seconds: float
    written: int
    rows: int
    spooled: int
    verified: bool
    cpu_s: float = 0.0
    """The bench process's own CPU time over the flood (the writer and the producer; not the
    database server's): on a shared machine, events per CPU second moves less than events/s."""

    @property
    def lost(self) -> int:
        return self.events - self.rows

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"database": self.database, "events": self.events,
                "seconds": round(self.seconds, 3), "events_per_s": round(self.events_per_s),
                "written": self.written, "rows": self.rows, "lost": self.lost,
                "spooled": self.spooled, "verified": self.verified,
                "cpu_s": round(self.cpu_s, 3),
                "events_per_cpu_s": round(self.events / self.cpu_s) if self.cpu_s else None,
                }  # fmt: skip


def rows(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def flood(url: str, workdir: Path, calls: int, *, timeout_s: float) -> Ingest:
    """Flood an empty audit store at ``url`` with ``calls`` calls' events."""
    workdir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        upgrade(engine)
        before = rows(engine)
        events: queue.Queue[Frame] = queue.Queue()
        key = secrets.token_bytes(32)
        checkpoints = workdir / "checkpoints.jsonl"
        writer = AuditWriter(engine, events, workdir / "spool.jsonl", checkpoints, key)
        base_s = int(time.time())
        frames = [f for n in range(calls) for f in call_frames(n, base_s)]
        writer.start()
        started = time.monotonic()
        cpu_started = time.process_time()
        for frame in frames:
            frame.received_ns = time.time_ns()
            events.put(frame)
        deadline = started + timeout_s
        while writer.metrics().events_written < len(frames) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        seconds = time.monotonic() - started
        cpu_s = time.process_time() - cpu_started
        writer.stop()
        metrics = writer.metrics()
        return Ingest(
            database=engine.dialect.name,
            events=len(frames),
            seconds=seconds,
            written=metrics.events_written,
            rows=rows(engine) - before,
            spooled=metrics.events_spooled,
            verified=verify(engine, checkpoints, key).ok,
            cpu_s=cpu_s,
        )
    finally:
        engine.dispose()
