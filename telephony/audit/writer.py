"""The audit writer thread: queue of AMI frames in, hash-chained rows and projections out.

The AMI reader only ever does ``queue.put``; everything slow happens here. Frames are written in
batches (``batch_size`` events or ``batch_wait_s`` after the first, whichever comes first). When
a commit fails the batch goes to the spool (fsynced JSON lines) and so does everything after it
until a replay, tried every ``retry_s``, has emptied the spool into the database in arrival
order. Writes are idempotent (see :mod:`telephony.audit.events`), so a batch whose commit
outcome is unknown is simply replayed. One writer per database: seqs come from the chain tail.

Errors are per frame. A frame that cannot become a record (an unreadable field) or breaks a
column's contract, and one the database refuses while it takes the others, goes to the
quarantine with its reason, once, and the rest of its batch is written. Only a database that
is down (or locked) sends frames to the spool. :meth:`AuditWriter.metrics` shows whether the
thread is alive and how far behind it is, for /healthz.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from telephony.ami.frames import Frame
from telephony.ami.identity import Quarantined, identity_problem
from telephony.audit.checkpoints import CheckpointLog
from telephony.audit.events import EventRecord, names_a_channel, record_from_frame
from telephony.audit.limits import record_problem
from telephony.audit.quarantine import Quarantine
from telephony.audit.spool import Spool
from telephony.audit.store import ProjectionCache, Tail, read_tail, write_batch

log = structlog.get_logger(__name__)

_IDLE_POLL_S = 0.2
# A frame admitted for writing, with the record made from it.
Item = tuple[EventRecord, Frame]
_ERROR_TEXT = 200


class Source(Protocol):
    """What the writer reads: a queue.Queue, or an :class:`~telephony.audit.intake.Intake`."""

    def get(self, block: bool = True, timeout: float | None = None) -> Frame | Quarantined: ...

    def get_nowait(self) -> Frame | Quarantined: ...


def short_error(exc: BaseException) -> str:
    """One line: the driver's message, without SQLAlchemy's statement and parameters."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = (str(orig).splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first[:_ERROR_TEXT]}"


def _db_down(exc: BaseException) -> bool:
    """The database did not answer (or is locked): retry later, rather than refusing a frame."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


@dataclass(frozen=True)
class WriterMetrics:
    events_written: int
    duplicates_skipped: int
    events_spooled: int
    spool_backlog: int
    db_available: bool
    last_seq: int
    lag_ms: tuple[float, ...]
    """Receive-to-commit lag of the most recent events, oldest first."""
    alive: bool = True
    """The writer thread is running (or not started yet)."""
    stalled_s: float = 0.0
    """How long frames have waited without the writer taking any (0 when it keeps up)."""
    quarantined: int = 0
    idle: bool = True
    """Nothing was waiting for the writer at its last look."""

    @property
    def lag_s(self) -> float:
        """How far behind the audit is: while frames wait, the latest commit's receive-to-
        commit lag or the stall if longer; 0 once the writer has caught up."""
        latest = self.lag_ms[-1] / 1000 if self.lag_ms and not self.idle else 0.0
        return max(latest, self.stalled_s)


class AuditWriter:
    def __init__(
        self,
        engine: Engine,
        events: Source,
        spool_path: Path,
        checkpoint_path: Path,
        checkpoint_key: bytes,
        *,
        quarantine_path: Path | None = None,
        source: str = "ami",
        checkpoint_interval_s: float = 60.0,
        checkpoint_every: int = 1000,
        batch_size: int = 1000,
        batch_wait_s: float = 0.1,
        retry_s: float = 2.0,
        lag_samples: int = 1000,
        cached_calls: int = 10_000,
    ) -> None:
        self._engine = engine
        self._events = events
        self._source = source
        self._spool = Spool(spool_path)
        self._quarantine = Quarantine(
            quarantine_path or spool_path.with_name(spool_path.stem + "-quarantine.jsonl")
        )
        self._quarantined_keys: set[tuple[int, int]] = set()
        self._progress_at = time.monotonic()
        self._waiting_since: float | None = None
        self._idle = True
        self._checkpoints = CheckpointLog(checkpoint_path, checkpoint_key)
        self._checkpoint_interval_s = checkpoint_interval_s
        self._checkpoint_every = checkpoint_every
        self._batch_size = batch_size
        self._batch_wait_s = batch_wait_s
        self._retry_s = retry_s
        self._cache = ProjectionCache(cached_calls)
        self._tail = Tail()
        self._spool_offset = 0
        self._retry_at = 0.0
        self._last_checkpoint_at = time.monotonic()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._lag: collections.deque[float] = collections.deque(maxlen=lag_samples)
        self._jobs: queue.Queue[Callable[[], object]] = queue.Queue()
        self._written = 0
        self._duplicates = 0
        self._spooled = 0
        self._db_available = True

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("AuditWriter already started")
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Drain the queue (to the database, or to the spool if it is down) and checkpoint."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, job: Callable[[], object]) -> None:
        """Run ``job`` on the writer thread between batches, once the spool is empty.

        For work that appends to the chain, like a CEL reconcile: the spooled events go in
        first, nothing else appends meanwhile, and the projection cache is dropped afterwards
        since the job may have changed projections. Jobs still queued at stop are dropped.
        """
        self._jobs.put(job)

    def metrics(self) -> WriterMetrics:
        thread = self._thread
        waiting = self._waiting_since
        stalled = 0.0 if waiting is None else time.monotonic() - max(waiting, self._progress_at)
        with self._lock:
            return WriterMetrics(
                alive=thread is None or thread.is_alive() or self._stopping.is_set(),
                stalled_s=max(0.0, stalled),
                quarantined=self._quarantine.count,
                idle=self._idle,
                events_written=self._written,
                duplicates_skipped=self._duplicates,
                events_spooled=self._spooled,
                spool_backlog=self._spool.backlog,
                db_available=self._db_available,
                last_seq=self._tail.seq,
                lag_ms=tuple(self._lag),
            )

    def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            taken = self._drain(block=not stopping)
            batch = self._admit(taken)
            if batch:
                self._handle(batch)
            elif self._spool.backlog:
                self._replay()
            if not stopping and not self._spool.backlog:
                self._run_jobs()
            self._checkpoint(force=False)
            if stopping and not taken:
                break
        if self._spool.backlog:
            self._retry_at = 0.0
            self._replay()
        self._checkpoint(force=True)

    def _drain(self, *, block: bool) -> list[Frame | Quarantined]:
        self._progress_at = time.monotonic()
        self._waiting_since = None
        try:
            first = self._events.get(timeout=_IDLE_POLL_S) if block else self._events.get_nowait()
        except queue.Empty:
            self._idle = not self._spool.backlog
            return []
        self._idle = False
        self._waiting_since = time.monotonic()
        batch: list[Frame | Quarantined] = [first]
        deadline = time.monotonic() + self._batch_wait_s
        while len(batch) < self._batch_size:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    batch.append(self._events.get(timeout=remaining))
                else:
                    batch.append(self._events.get_nowait())
            except queue.Empty:
                break
        return batch

    def _admit(self, items: Sequence[Frame | Quarantined]) -> list[Item]:
        """The frames that can be records, with their records; the rest go to the quarantine."""
        admitted = []
        for item in items:
            if isinstance(item, Quarantined):
                self._reject(item.parts, item.reason, item.linkedid, self._source)
            elif (record := self._record(item, self._source)) is not None:
                admitted.append((record, item))
        return admitted

    def _record(self, frame: Frame, source: str) -> EventRecord | None:
        """``frame`` as a record, or None when it cannot be one (it is then quarantined).

        The record is made once here and written as is: its canonical JSON and hashes are
        most of the writer's CPU per event."""
        record = None
        try:
            problem = identity_problem(frame, channel_event=names_a_channel(frame))
            if problem is None:
                record = record_from_frame(frame, source)
                problem = record_problem(record)
        except Exception as exc:  # any field Asterisk or a caller could garble
            problem = f"unreadable: {short_error(exc)}"
        if problem is not None:
            self._reject((frame,), problem, frame.get("Linkedid") or "", source)
            return None
        return record

    def _reject(
        self, parts: Sequence[Frame], reason: str, linkedid: str, source: str
    ) -> None:
        key = (parts[0].received_ns if parts else 0, hash(tuple(p.fields for p in parts)))
        if key in self._quarantined_keys:
            return  # a replay of a frame already quarantined
        self._quarantined_keys.add(key)
        self._quarantine.add(parts, reason, linkedid=linkedid, source=source)
        self._progress_at = time.monotonic()
        log.warning(
            "audit.quarantined", reason=reason, linkedid=linkedid,
            ami_event=parts[0].event if parts else None,
        )  # fmt: skip

    def _handle(self, batch: list[Item]) -> None:
        if not batch:
            return
        # Once anything is spooled, later frames queue behind it to keep the chain in order.
        if self._spool.backlog or time.monotonic() < self._retry_at:
            self._to_spool([frame for _, frame in batch])
            self._replay()
            return
        rest = self._commit(batch)
        if rest:
            self._to_spool([frame for _, frame in rest])

    def _to_spool(self, batch: list[Frame]) -> None:
        self._spool.append(batch, self._source)
        self._progress_at = time.monotonic()
        with self._lock:
            self._spooled += len(batch)

    def _replay(self) -> None:
        if time.monotonic() < self._retry_at:
            return
        while self._spool.backlog:
            items, offset = self._spool.read(self._spool_offset, self._batch_size)
            if not items:
                return
            admitted = [(record, f) for f, source in items
                        if (record := self._record(f, source)) is not None]  # fmt: skip
            if self._commit(admitted):
                # Down again; the frames written meanwhile are skipped as duplicates later.
                return
            self._spool_offset = offset
            self._spool.consumed(len(items))
            log.info("audit.spool_replayed", events=len(items), backlog=self._spool.backlog)
        self._spool.clear()
        self._spool_offset = 0

    def _commit(self, items: Sequence[Item]) -> list[Item]:
        """Write ``items``; returns those not written because the database is down.

        A batch the database refuses is retried frame by frame, and the frames it refuses
        alone are quarantined: one bad frame costs one line in the log, not the batch.
        """
        if not items:
            return []
        error = self._write(items)
        if error is None:
            return []
        if _db_down(error):
            log.warning("audit.commit_failed", error=short_error(error), events=len(items))
            with self._lock:
                self._db_available = False
            self._retry_at = time.monotonic() + self._retry_s
            return list(items)
        if not isinstance(error, SQLAlchemyError):
            log.error("audit.commit_crashed", error=short_error(error), events=len(items),
                      exc_info=error)  # fmt: skip
        if len(items) > 1:
            log.warning("audit.batch_refused", error=short_error(error), events=len(items))
            for n, item in enumerate(items):
                rest = self._commit([item])
                if rest:
                    return list(items[n:])
            return []
        record, frame = items[0]
        self._reject((frame,), f"refused: {short_error(error)}", frame.get("Linkedid") or "",
                     record.source)  # fmt: skip
        return []

    def _write(self, items: Sequence[Item]) -> Exception | None:
        try:
            with Session(self._engine) as session, session.begin():
                result = write_batch(session, items, self._cache)
        except Exception as exc:
            return exc
        committed_ns = time.time_ns()
        self._progress_at = time.monotonic()
        self._cache.update(result.views)
        with self._lock:
            self._db_available = True
            self._tail = result.tail
            self._written += len(result.written)
            self._duplicates += result.duplicates
            self._lag.extend((committed_ns - r.received_ns) / 1e6 for r in result.written)
        for call in result.ended:
            log.info(
                "audit.call_ended",
                linkedid=call.linkedid,
                outcome=call.outcome,
                answer_seconds=call.answer_seconds,
            )
        return None

    def _run_jobs(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            try:
                job()
            except Exception:
                log.exception("audit.job_failed")
            self._cache.clear()
            try:
                with Session(self._engine) as session:
                    tail = read_tail(session)
            except SQLAlchemyError:
                continue
            with self._lock:
                self._tail = tail

    def _checkpoint(self, *, force: bool) -> None:
        tail = self._tail
        pending = tail.seq - self._checkpoints.last_seq
        if pending <= 0:
            return
        due = time.monotonic() - self._last_checkpoint_at >= self._checkpoint_interval_s
        if force or due or pending >= self._checkpoint_every:
            self._checkpoints.append(tail.seq, tail.hash, datetime.now(UTC))
            self._last_checkpoint_at = time.monotonic()
