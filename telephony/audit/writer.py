"""The audit writer thread: queue of AMI frames in, hash-chained rows and projections out.

The AMI reader only ever does ``queue.put``; everything slow happens here. Frames are written in
batches (``batch_size`` events or ``batch_wait_s`` after the first, whichever comes first). When
a commit fails the batch goes to the spool (fsynced JSON lines) and so does everything after it
until a replay, tried every ``retry_s``, has emptied the spool into the database in arrival
order. Writes are idempotent (see :mod:`telephony.audit.events`), so a batch whose commit
outcome is unknown is simply replayed. One writer per database: seqs come from the chain tail.
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

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from telephony.ami.frames import Frame
from telephony.audit.checkpoints import CheckpointLog
from telephony.audit.events import record_from_frame
from telephony.audit.spool import Spool
from telephony.audit.store import ProjectionCache, Tail, read_tail, write_batch

log = structlog.get_logger(__name__)

_IDLE_POLL_S = 0.2


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


class AuditWriter:
    def __init__(
        self,
        engine: Engine,
        events: queue.Queue[Frame],
        spool_path: Path,
        checkpoint_path: Path,
        checkpoint_key: bytes,
        *,
        source: str = "ami",
        checkpoint_interval_s: float = 60.0,
        checkpoint_every: int = 1000,
        batch_size: int = 200,
        batch_wait_s: float = 0.1,
        retry_s: float = 2.0,
        lag_samples: int = 1000,
        cached_calls: int = 10_000,
    ) -> None:
        self._engine = engine
        self._events = events
        self._source = source
        self._spool = Spool(spool_path)
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
        with self._lock:
            return WriterMetrics(
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
            batch = self._drain(block=not stopping)
            if batch:
                self._handle(batch)
            elif self._spool.backlog:
                self._replay()
            if not stopping and not self._spool.backlog:
                self._run_jobs()
            self._checkpoint(force=False)
            if stopping and not batch:
                break
        if self._spool.backlog:
            self._retry_at = 0.0
            self._replay()
        self._checkpoint(force=True)

    def _drain(self, *, block: bool) -> list[Frame]:
        try:
            first = self._events.get(timeout=_IDLE_POLL_S) if block else self._events.get_nowait()
        except queue.Empty:
            return []
        batch = [first]
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

    def _handle(self, batch: list[Frame]) -> None:
        # Once anything is spooled, later frames queue behind it to keep the chain in order.
        if self._spool.backlog or time.monotonic() < self._retry_at:
            self._to_spool(batch)
            self._replay()
        elif not self._commit([(frame, self._source) for frame in batch]):
            self._to_spool(batch)

    def _to_spool(self, batch: list[Frame]) -> None:
        self._spool.append(batch, self._source)
        with self._lock:
            self._spooled += len(batch)

    def _replay(self) -> None:
        if time.monotonic() < self._retry_at:
            return
        while self._spool.backlog:
            items, offset = self._spool.read(self._spool_offset, self._batch_size)
            if not items or not self._commit(items):
                return
            self._spool_offset = offset
            self._spool.consumed(len(items))
            log.info("audit.spool_replayed", events=len(items), backlog=self._spool.backlog)
        self._spool.clear()
        self._spool_offset = 0

    def _commit(self, items: Sequence[tuple[Frame, str]]) -> bool:
        records = [(record_from_frame(frame, source), frame) for frame, source in items]
        try:
            with Session(self._engine) as session, session.begin():
                result = write_batch(session, records, self._cache)
        except Exception as exc:
            # Down or refusing, the spool keeps the events until a replay succeeds; anything
            # but a database error is our bug, so it gets a traceback.
            if isinstance(exc, SQLAlchemyError):
                log.warning("audit.commit_failed", error=str(exc), events=len(items))
            else:
                log.exception("audit.commit_crashed", events=len(items))
            with self._lock:
                self._db_available = False
            self._retry_at = time.monotonic() + self._retry_s
            return False
        committed_ns = time.time_ns()
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
        return True

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
