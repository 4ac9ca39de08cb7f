"""The incident tables (migration 0007_incidents): incidents, their calls, shares, timeline,
hand-offs to agencies, the webhook outbox and agency users' accounts.

The tables hold the working state and full text; the audit chain holds one ConsoleAction per
change carrying the SHA-256 of the change as recorded here (``incident_events.digest``), so
an edited timeline row no longer matches the chained digest.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from telephony.audit.models import UTCDateTime
from telephony.db import Base


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    # The regency whose centre created it; shares add others (IncidentShare).
    regency_code: Mapped[str] = mapped_column(String(16), index=True)
    type: Mapped[str] = mapped_column(String(32))
    subtype: Mapped[str] = mapped_column(String(64), default="")
    priority: Mapped[int] = mapped_column(Integer, default=2)
    status: Mapped[str] = mapped_column(String(16), index=True)
    number: Mapped[str] = mapped_column(String(80), default="")
    # The caller's location as the network or handset gave it, kept beside the operator's.
    caller_lat: Mapped[float | None] = mapped_column(Float)
    caller_lon: Mapped[float | None] = mapped_column(Float)
    caller_radius_m: Mapped[float | None] = mapped_column(Float)
    caller_source: Mapped[str] = mapped_column(String(32), default="")
    # A point the operator set on the map; None: the caller's location stands.
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str] = mapped_column(Text, default="")
    narrative: Mapped[str] = mapped_column(Text, default="")
    people: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IncidentCall(Base):
    __tablename__ = "incident_calls"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(150), primary_key=True, index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    linked_by: Mapped[str] = mapped_column(String(64))


class IncidentShare(Base):
    __tablename__ = "incident_shares"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    regency_code: Mapped[str] = mapped_column(String(16), primary_key=True, index=True)
    shared_at: Mapped[datetime] = mapped_column(UTCDateTime)
    shared_by: Mapped[str] = mapped_column(String(64))


class IncidentEvent(Base):
    """One change: the timeline and the record of who did what, when."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    agency_id: Mapped[str] = mapped_column(String(64), default="")
    regency_code: Mapped[str] = mapped_column(String(16), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    digest: Mapped[str] = mapped_column(String(64))


class Handoff(Base):
    """An incident handed to one agency, with the agency's own steps."""

    __tablename__ = "incident_handoffs"
    __table_args__ = (UniqueConstraint("incident_id", "agency_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    agency_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    dispatched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dispatched_by: Mapped[str] = mapped_column(String(64))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    en_route_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_scene_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Outbox(Base):
    """A webhook delivery owed: kept until the receiver answered 2xx (durable across restarts)."""

    __tablename__ = "incident_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("incident_handoffs.id"), index=True)
    agency_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(Text)  # the incident JSON as dispatched, sent verbatim
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Counted before each send and committed, so a crash mid-send makes the next one a retry.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")


class AgencyUser(Base):
    """A console account of role ``agency``: the agency whose hand-offs it sees."""

    __tablename__ = "agency_users"

    name: Mapped[str] = mapped_column(ForeignKey("console_users.name", ondelete="CASCADE"),
                                      primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(64))
