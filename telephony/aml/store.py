"""The ``aml_fixes`` table: every authenticated message, usable or not, with its raw text.

The rows are what `telephony aml list` and `calls show` read; the audit chain pins each one
(the ``AMLFix`` UserEvent carries its id, raw text and SHA-256, see telephony.aml.audit).
"""

from __future__ import annotations

import hashlib
import queue
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import DateTime, Engine, Float, Integer, String, Text, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from telephony.aml.fix import Fix, Rejected
from telephony.db import Base


class AMLFix(Base):
    __tablename__ = "aml_fixes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sender: Mapped[str] = mapped_column(String(64))
    transport: Mapped[str] = mapped_column(String(8))
    number: Mapped[str] = mapped_column(String(32))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    fixed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    method: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float | None] = mapped_column(Float)
    rejected: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(200))
    raw: Mapped[str] = mapped_column(Text)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str | None] = mapped_column(String(64))
    matched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    routed_to: Mapped[str] = mapped_column(String(16))


@dataclass(frozen=True)
class Stored:
    """A fix as the console and the commands see it (times as Unix seconds)."""

    id: int
    received_at: float
    sender: str
    transport: str
    number: str
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    fixed_at: float | None
    method: str
    confidence: float | None
    rejected: str
    detail: str
    raw_sha256: str
    linkedid: str | None
    routed_to: str = ""


def _utc(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _stored(row: AMLFix) -> Stored:
    return Stored(row.id, _utc(row.received_at) or 0.0, row.sender, row.transport, row.number,
                  row.lat, row.lon, row.accuracy_m, _utc(row.fixed_at), row.method,
                  row.confidence, row.rejected, row.detail, row.raw_sha256, row.linkedid,
                  row.routed_to)


def sha256(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


def _row(result: Fix | Rejected, sender: str, transport: str, raw: str, received_at: float,
         number: str) -> AMLFix:
    at = datetime.fromtimestamp(received_at, UTC)
    if isinstance(result, Fix):
        return AMLFix(received_at=at, sender=sender, transport=transport, number=result.number,
                      lat=result.lat, lon=result.lon, accuracy_m=result.accuracy_m,
                      fixed_at=datetime.fromtimestamp(result.fixed_at, UTC),
                      method=result.method.value, confidence=result.confidence, rejected="",
                      detail="", raw=raw, raw_sha256=sha256(raw), routed_to="")
    return AMLFix(received_at=at, sender=sender, transport=transport, number=number,
                  method="", rejected=result.reason.value, detail=result.detail[:200],
                  raw=raw, raw_sha256=sha256(raw), routed_to="")


def record(engine: Engine, result: Fix | Rejected, *, sender: str, transport: str, raw: str,
           received_at: float, number: str = "") -> Stored:
    row = _row(result, sender, transport, raw, received_at, number)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        session.add(row)
    return _stored(row)


class Writer:
    """Group commit: requests wait for their row, one thread writes whatever has queued up
    in one transaction. A commit per fix caps SQLite near 100 fixes/s on a busy machine;
    a batch costs about one."""

    def __init__(self, engine: Engine, batch: int = 500) -> None:
        self._engine, self._batch = engine, batch
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="aml-writer", daemon=True)
        self._thread.start()

    def record(self, result: Fix | Rejected, *, sender: str, transport: str, raw: str,
               received_at: float, number: str = "", timeout: float = 10.0) -> Stored:
        """The stored row; raises SQLAlchemyError when the batch could not be written."""
        pending = _Pending(_row(result, sender, transport, raw, received_at, number))
        self._queue.put(pending)
        if not pending.done.wait(timeout):
            raise OperationalError("aml_fixes", {}, TimeoutError("not written in time"))
        if pending.error is not None:
            raise pending.error
        return _stored(pending.row)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            error: SQLAlchemyError | None = None
            try:
                with Session(self._engine, expire_on_commit=False) as session, session.begin():
                    session.add_all([p.row for p in batch])
            except SQLAlchemyError as exc:
                error = exc
            for pending in batch:
                pending.error = error
                pending.done.set()


@dataclass
class _Pending:
    row: AMLFix
    done: threading.Event = field(default_factory=threading.Event)
    error: SQLAlchemyError | None = None


def match(engine: Engine, fix_id: int, linkedid: str, at: float) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(AMLFix).where(AMLFix.id == fix_id).values(
            linkedid=linkedid, matched_at=datetime.fromtimestamp(at, UTC)))


def routed(engine: Engine, fix_id: int, queue: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(AMLFix).where(AMLFix.id == fix_id).values(routed_to=queue))


def fixes(engine: Engine, *, linkedid: str | None = None, unmatched: bool = False,
          limit: int = 200) -> list[Stored]:
    query = select(AMLFix).order_by(AMLFix.id.desc()).limit(limit)
    if linkedid is not None:
        query = query.where(AMLFix.linkedid == linkedid)
    if unmatched:
        query = query.where(AMLFix.linkedid.is_(None), AMLFix.rejected == "")
    with Session(engine) as session:
        return [_stored(row) for row in session.scalars(query)]
