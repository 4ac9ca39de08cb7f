"""One database transaction of the writer: chain new events, skip replays, update projections."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telephony.ami.frames import Frame
from telephony.audit.chain import GENESIS_HASH, link_hash
from telephony.audit.events import EventRecord
from telephony.audit.models import AuditEvent, Call, CallLeg
from telephony.audit.projection import CallState, LegState, Phase, apply

CallView = tuple[CallState | None, dict[str, LegState]]
# The PostgreSQL advisory lock that every appender holds while it extends the chain.
CHAIN_LOCK_ID = 112_0001


@dataclass(frozen=True)
class Tail:
    seq: int = 0
    hash: str = GENESIS_HASH


class ProjectionCache:
    """Recently touched calls, so a busy call does not cost a SELECT per event."""

    def __init__(self, max_calls: int) -> None:
        self._max = max_calls
        self._calls: OrderedDict[str, CallView] = OrderedDict()

    def get(self, linkedid: str) -> CallView | None:
        view = self._calls.get(linkedid)
        if view is not None:
            self._calls.move_to_end(linkedid)
        return view

    def update(self, views: dict[str, CallView]) -> None:
        for linkedid, view in views.items():
            self._calls[linkedid] = view
            self._calls.move_to_end(linkedid)
        while len(self._calls) > self._max:
            self._calls.popitem(last=False)

    def clear(self) -> None:
        self._calls.clear()


@dataclass
class BatchResult:
    written: list[EventRecord] = field(default_factory=list)
    duplicates: int = 0
    tail: Tail = field(default_factory=Tail)
    views: dict[str, CallView] = field(default_factory=dict)
    ended: list[CallState] = field(default_factory=list)


def lock_chain(session: Session) -> None:
    """Hold the chain tail until the transaction ends, so appenders queue rather than race.

    The live writer and a reconcile (``telephony audit reconcile``, another process) both
    append. PostgreSQL: a transaction-scoped advisory lock. SQLite: ``BEGIN IMMEDIATE`` takes
    the database's single write lock before the tail is read (pysqlite would otherwise begin
    only at the first INSERT). Without it no fork is possible either, since ``seq`` is the
    primary key, but the loser would fail its commit instead of waiting.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK_ID)))
    elif connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if not getattr(raw, "in_transaction", True):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def read_tail(session: Session) -> Tail:
    lock_chain(session)
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return Tail(row.seq, row.hash) if row is not None else Tail()


def write_batch(
    session: Session, items: Sequence[tuple[EventRecord, Frame]], cache: ProjectionCache
) -> BatchResult:
    """Append ``items`` to the chain inside the caller's transaction.

    Events already stored (same uniqueid and idempotency key) are skipped together with their
    projection, which they already had. The cache is only read: the caller merges
    ``result.views`` after the commit succeeds, so a rolled-back batch leaves it untouched.
    """
    result = BatchResult(tail=read_tail(session))
    keys = [record.event_key for record, _ in items]
    stored = session.execute(
        select(AuditEvent.uniqueid, AuditEvent.event_key).where(AuditEvent.event_key.in_(keys))
    )
    seen = {(uniqueid, key) for uniqueid, key in stored}
    dirty_calls: set[str] = set()
    dirty_legs: dict[str, set[str]] = {}
    for record, frame in items:
        identity = (record.uniqueid, record.event_key)
        if identity in seen:
            result.duplicates += 1
            continue
        seen.add(identity)
        result.tail = _append(session, record, result.tail)
        result.written.append(record)
        if not record.linkedid:
            continue
        view = result.views.get(record.linkedid) or cache.get(record.linkedid)
        call, legs = view if view is not None else _load(session, record.linkedid)
        change = apply(frame, record.time, call, legs)
        if change.call is None and not change.legs:
            continue
        if change.call is not None:
            dirty_calls.add(record.linkedid)
            if change.call.ended_at is not None and (call is None or call.ended_at is None):
                result.ended.append(change.call)
        legs = {**legs, **{leg.uniqueid: leg for leg in change.legs}}
        dirty_legs.setdefault(record.linkedid, set()).update(leg.uniqueid for leg in change.legs)
        result.views[record.linkedid] = (change.call or call, legs)
    for linkedid, (call, legs) in result.views.items():
        if linkedid in dirty_calls and call is not None:
            session.merge(Call(**_columns(call)))
        for uniqueid in dirty_legs.get(linkedid, ()):
            session.merge(CallLeg(**_columns(legs[uniqueid])))
    session.flush()
    return result


def _append(session: Session, record: EventRecord, tail: Tail) -> Tail:
    seq = tail.seq + 1
    chain_hash = link_hash(
        seq=seq,
        time=record.time,
        linkedid=record.linkedid,
        uniqueid=record.uniqueid,
        type=record.type,
        payload=record.payload,
        source=record.source,
        event_key=record.event_key,
        prev_hash=tail.hash,
    )
    session.add(
        AuditEvent(
            seq=seq,
            time=record.time,
            linkedid=record.linkedid,
            uniqueid=record.uniqueid,
            type=record.type,
            payload=record.payload,
            source=record.source,
            event_key=record.event_key,
            prev_hash=tail.hash,
            hash=chain_hash,
        )
    )
    return Tail(seq, chain_hash)


def _columns(state: CallState | LegState) -> dict[str, object]:
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


def _load(session: Session, linkedid: str) -> CallView:
    row = session.get(Call, linkedid)
    call = None
    if row is not None:
        values = {f.name: getattr(row, f.name) for f in dataclasses.fields(CallState)}
        call = CallState(**{**values, "phase": Phase(row.phase)})
    legs = {
        leg.uniqueid: LegState(
            **{f.name: getattr(leg, f.name) for f in dataclasses.fields(LegState)}
        )
        for leg in session.scalars(select(CallLeg).where(CallLeg.linkedid == linkedid))
    }
    return call, legs
