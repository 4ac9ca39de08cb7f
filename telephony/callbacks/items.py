"""Callback items, made from abandoned calls in the audit store.

`sweep()` turns each newly abandoned call (hung up while queued, or in the IVR after the
welcome) into a callback item, or links it to the open item of the same number within the
merge window, so three quick attempts from one phone are one person to call back.
It is idempotent (a call is linked once, by linkedid) and safe to run from any process.

Only a dialable number (``+`` and 3 to 15 digits, E.164's longest) becomes an item; anything
else the network or a caller sent is recorded as no-number. Each call is swept in its own
savepoint, so one row the database refuses is recorded as an error and the rest go on.
Text copied from the call is cut to the item's columns (telephony.audit.limits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy import DateTime, Engine, Float, ForeignKey, Integer, String, Table, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from telephony.audit import Call, Outcome
from telephony.audit.limits import clip, column_limits
from telephony.db import Base
from telephony.errors import TelephonyError

log = structlog.get_logger(__name__)


class CallbackError(TelephonyError):
    """No such callback item, or not in a state for what was asked."""


class Status(StrEnum):
    OPEN = "open"
    TAKEN = "taken"
    DONE = "done"


class CallbackItem(Base):
    __tablename__ = "callback_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    caller: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(8), index=True)
    attempts: Mapped[int] = mapped_column(Integer)
    emergency_type: Mapped[str | None] = mapped_column(String(16))
    regency_code: Mapped[str | None] = mapped_column(String(5))
    location_source: Mapped[str | None] = mapped_column(String(32))
    location_lat: Mapped[float | None] = mapped_column(Float)
    location_lon: Mapped[float | None] = mapped_column(Float)
    location_radius_m: Mapped[float | None] = mapped_column(Float)
    cell_id: Mapped[str | None] = mapped_column(String(64))
    waited_s: Mapped[float] = mapped_column(Float)
    first_linkedid: Mapped[str] = mapped_column(String(150))
    last_linkedid: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    taken_by: Mapped[str | None] = mapped_column(String(64))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CallbackAttempt(Base):
    """One abandoned call, linked to the item that calls its number back."""

    __tablename__ = "callback_attempts"

    linkedid: Mapped[str] = mapped_column(String(150), primary_key=True)
    # None when the call needs no callback (a misdial during the welcome, no number).
    item_id: Mapped[int | None] = mapped_column(ForeignKey("callback_items.id"), index=True)
    abandoned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    waited_s: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(32))


@dataclass(frozen=True)
class SweepReport:
    created: int
    linked: int
    skipped_no_number: int


ABANDONED = (Outcome.ABANDONED_IN_QUEUE, Outcome.ABANDONED_IN_IVR)
_DIALABLE = re.compile(r"\+?[0-9]{3,15}")


def dialable(number: str | None) -> bool:
    return number is not None and _DIALABLE.fullmatch(number) is not None


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def sweep(engine: Engine, merge_window_s: float, min_ivr_s: float) -> SweepReport:
    created = linked = no_number = 0
    with Session(engine) as session, session.begin():
        done = select(CallbackAttempt.linkedid)
        calls = session.scalars(
            select(Call)
            .where(Call.outcome.in_(ABANDONED), Call.ended_at.is_not(None),
                   Call.is_callback.is_(False), Call.linkedid.not_in(done))
            .order_by(Call.ended_at)
        ).all()
        for call in calls:
            assert call.ended_at is not None
            ended, arrived = _utc(call.ended_at), _utc(call.arrived_at)
            waited = (ended - arrived).total_seconds()
            try:
                with session.begin_nested():
                    kind = _sweep_one(session, call, ended, waited, merge_window_s, min_ivr_s)
            except SQLAlchemyError as exc:
                log.error("callbacks.row_failed", linkedid=call.linkedid,
                          error=str(getattr(exc, "orig", exc)).splitlines()[0][:200])
                with session.begin_nested():
                    session.add(_attempt(call.linkedid, None, ended, waited, "error"))
                continue
            created += kind == "created"
            linked += kind == "linked"
            if kind == "no-number":
                no_number += 1
                log.warning("callbacks.no_number", linkedid=call.linkedid)
    if created or linked:
        log.info("callbacks.swept", created=created, linked=linked)
    return SweepReport(created, linked, no_number)


def _attempt(linkedid: str, item_id: int | None, ended: datetime, waited: float,
             outcome: str) -> CallbackAttempt:  # fmt: skip
    return CallbackAttempt(linkedid=linkedid, item_id=item_id, abandoned_at=ended,
                           waited_s=waited, outcome=outcome)  # fmt: skip


def _sweep_one(session: Session, call: Call, ended: datetime, waited: float,
               merge_window_s: float, min_ivr_s: float) -> str:  # fmt: skip
    """Link one abandoned call; returns what it became (created, linked, no-number...)."""
    if call.outcome is Outcome.ABANDONED_IN_IVR and waited < min_ivr_s:
        # Hung up during the welcome: a misdial, not someone left waiting.
        session.add(_attempt(call.linkedid, None, ended, waited, "ignored-short"))
        return "ignored-short"
    if not dialable(call.caller):
        session.add(_attempt(call.linkedid, None, ended, waited, "no-number"))
        return "no-number"
    item = session.scalars(
        select(CallbackItem).where(
            CallbackItem.caller == call.caller,
            CallbackItem.status != Status.DONE.value,
            CallbackItem.updated_at >= ended - timedelta(seconds=merge_window_s),
        ).order_by(CallbackItem.updated_at.desc())
    ).first()
    kind = "linked"
    if item is None:
        item = CallbackItem(caller=call.caller, status=Status.OPEN.value, attempts=0,
                            first_linkedid=call.linkedid, created_at=ended)
        session.add(item)
        kind = "created"
    item.attempts += 1
    item.last_linkedid, item.updated_at, item.waited_s = call.linkedid, ended, waited
    limits = _limits()
    item.emergency_type = _cut(call.emergency_type, limits["emergency_type"]) or item.emergency_type
    item.regency_code = _cut(call.regency_code, limits["regency_code"]) or item.regency_code
    if call.location_source:
        item.location_source = _cut(call.location_source, limits["location_source"])
        item.location_lat, item.location_lon = call.location_lat, call.location_lon
        item.location_radius_m = call.location_radius_m
    item.cell_id = _cut(call.cell_id, limits["cell_id"]) or item.cell_id
    session.flush()
    session.add(_attempt(call.linkedid, item.id, ended, waited,
                         call.outcome.value if call.outcome else ""))  # fmt: skip
    return kind


def _limits() -> dict[str, int]:
    table = CallbackItem.__table__
    assert isinstance(table, Table)
    return column_limits(table)


def _cut(value: str | None, limit: int) -> str | None:
    return None if value is None else clip(value, limit)


def items(engine: Engine, include_done: bool = False) -> list[CallbackItem]:
    with Session(engine) as session:
        query = select(CallbackItem).order_by(CallbackItem.created_at)
        if not include_done:
            query = query.where(CallbackItem.status != Status.DONE.value)
        rows = list(session.scalars(query).all())
        session.expunge_all()
    return rows


def mark(engine: Engine, item_id: int, status: Status, operator: str | None = None) -> CallbackItem:
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        item = session.get(CallbackItem, item_id)
        if item is None:
            raise CallbackError(f"no callback item {item_id}")
        if item.status == Status.DONE.value:
            raise CallbackError(f"callback item {item_id} is already done")
        item.status = status.value
        if status is Status.TAKEN:
            item.taken_by, item.taken_at = operator, now
        if status is Status.DONE:
            item.done_at = now
        session.flush()
        session.expunge(item)
    return item
