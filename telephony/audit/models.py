"""Audit tables: ``calls`` and ``call_legs`` (projections, updated in place) and ``audit_events``
(append-only, hash-chained).

The ORM refuses to update or delete ``AuditEvent`` rows; the migration adds database triggers
that refuse the same for raw SQL, so only someone able to drop those triggers can tamper, and
:mod:`telephony.audit.chain` shows where they did.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.session import ORMExecuteState
from sqlalchemy.types import TypeDecorator

from telephony.audit.projection import LegRole, Outcome
from telephony.db import Base


class AppendOnlyViolation(RuntimeError):
    """Something tried to change or remove an audit event."""


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite keeps no zone, so naive values read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("audit times must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(enum_class: type[Outcome] | type[LegRole], name: str) -> Enum:
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )


class Call(Base):
    __tablename__ = "calls"

    linkedid: Mapped[str] = mapped_column(String(150), primary_key=True)
    caller: Mapped[str | None] = mapped_column(String(80))
    location_source: Mapped[str | None] = mapped_column(String(32))
    location_lat: Mapped[float | None] = mapped_column(Float)
    location_lon: Mapped[float | None] = mapped_column(Float)
    location_radius_m: Mapped[float | None] = mapped_column(Float)
    cell_id: Mapped[str | None] = mapped_column(String(64))
    regency_code: Mapped[str | None] = mapped_column(String(16), index=True)
    emergency_type: Mapped[str | None] = mapped_column(String(32))
    ivr_language: Mapped[str | None] = mapped_column(String(16))
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ivr_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_ring_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recording_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queue: Mapped[str | None] = mapped_column(String(80))
    phase: Mapped[str] = mapped_column(String(16))
    overflowed: Mapped[bool] = mapped_column(Boolean, default=False)
    transferred: Mapped[bool] = mapped_column(Boolean, default=False)
    is_callback: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome, "call_outcome"))
    answering_operator: Mapped[str | None] = mapped_column(String(150))
    answer_seconds: Mapped[float | None] = mapped_column(Float)
    # Some event of the call carried a caller's text where Asterisk's fields go (AMI
    # injection, telephony.ami.identity); its ids are still Asterisk's own.
    injected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CallLeg(Base):
    __tablename__ = "call_legs"

    uniqueid: Mapped[str] = mapped_column(String(150), primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(150), index=True)
    channel: Mapped[str | None] = mapped_column(String(150))
    role: Mapped[LegRole] = mapped_column(_enum(LegRole, "leg_role"))
    endpoint: Mapped[str | None] = mapped_column(String(150))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    hangup_cause_text: Mapped[str | None] = mapped_column(String(64))
    dial_status: Mapped[str | None] = mapped_column(String(32))
    backfilled: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("uniqueid", "event_key", name="uq_audit_events_idempotency"),
        Index("ix_audit_events_linkedid", "linkedid"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    linkedid: Mapped[str] = mapped_column(String(150))
    uniqueid: Mapped[str] = mapped_column(String(150))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32))
    event_key: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _refuse_row_change(_mapper: Any, _connection: Any, target: AuditEvent) -> None:
    raise AppendOnlyViolation(f"audit event seq {target.seq} is append-only")


@event.listens_for(Session, "before_flush")
def _refuse_dirty_events(session: Session, _context: Any, _instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, AuditEvent):
            raise AppendOnlyViolation(f"cannot delete audit event seq {obj.seq}")
    for obj in session.dirty:
        if isinstance(obj, AuditEvent) and session.is_modified(obj):
            raise AppendOnlyViolation(f"cannot modify audit event seq {obj.seq}")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete) and mapper is not None and mapper.class_ is AuditEvent:
        raise AppendOnlyViolation("bulk UPDATE/DELETE of audit events is refused")
