"""An incident as read from its tables, in one immutable snapshot the API, CLI and export use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from telephony.incidents.models import (
    Handoff,
    Incident,
    IncidentCall,
    IncidentEvent,
    IncidentShare,
)

# An incident's steps, in order; a hand-off walks the same steps from "dispatched".
STEPS = ("created", "dispatched", "acknowledged", "en-route", "on-scene", "closed")
AGENCY_STEPS = STEPS[2:]
TYPES = ("police", "medical", "fire", "sar", "disaster", "other")
PRIORITIES = (1, 2, 3)  # 1 the most urgent


@dataclass(frozen=True)
class HandoffRecord:
    id: int
    agency_id: str
    status: str
    dispatched_at: datetime
    dispatched_by: str
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    en_route_at: datetime | None
    on_scene_at: datetime | None
    closed_at: datetime | None
    escalated_at: datetime | None


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    user: str
    kind: str
    agency_id: str
    regency_code: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class IncidentRecord:
    id: int
    uuid: str
    regency_code: str
    type: str
    subtype: str
    priority: int
    status: str
    number: str
    caller_lat: float | None
    caller_lon: float | None
    caller_radius_m: float | None
    caller_source: str
    lat: float | None
    lon: float | None
    address: str
    narrative: str
    people: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    closed_at: datetime | None
    calls: tuple[str, ...]
    shared_with: tuple[str, ...]
    handoffs: tuple[HandoffRecord, ...]
    timeline: tuple[TimelineEntry, ...]

    @property
    def regencies(self) -> tuple[str, ...]:
        """Every regency that sees it: its own first, then those it was shared with."""
        return (self.regency_code, *self.shared_with)

    @property
    def point(self) -> tuple[float, float] | None:
        """Where it is: the operator's point if set, else the caller's location."""
        if self.lat is not None and self.lon is not None:
            return self.lat, self.lon
        if self.caller_lat is not None and self.caller_lon is not None:
            return self.caller_lat, self.caller_lon
        return None


def _handoff(row: Handoff) -> HandoffRecord:
    return HandoffRecord(row.id, row.agency_id, row.status, row.dispatched_at, row.dispatched_by,
                         row.delivered_at, row.acknowledged_at, row.en_route_at, row.on_scene_at,
                         row.closed_at, row.escalated_at)


def read(session: Session, row: Incident) -> IncidentRecord:
    calls = session.scalars(select(IncidentCall.linkedid).where(
        IncidentCall.incident_id == row.id).order_by(IncidentCall.linked_at))
    shares = session.scalars(select(IncidentShare.regency_code).where(
        IncidentShare.incident_id == row.id).order_by(IncidentShare.shared_at))
    handoffs = session.scalars(select(Handoff).where(Handoff.incident_id == row.id)
                               .order_by(Handoff.id))
    events = session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == row.id)
                             .order_by(IncidentEvent.id))
    return IncidentRecord(
        id=row.id, uuid=row.uuid, regency_code=row.regency_code, type=row.type,
        subtype=row.subtype, priority=row.priority, status=row.status, number=row.number,
        caller_lat=row.caller_lat, caller_lon=row.caller_lon,
        caller_radius_m=row.caller_radius_m, caller_source=row.caller_source, lat=row.lat,
        lon=row.lon, address=row.address, narrative=row.narrative, people=row.people,
        created_at=row.created_at, created_by=row.created_by, updated_at=row.updated_at,
        closed_at=row.closed_at, calls=tuple(calls), shared_with=tuple(shares),
        handoffs=tuple(_handoff(h) for h in handoffs),
        timeline=tuple(TimelineEntry(e.at, e.user, e.kind, e.agency_id, e.regency_code,
                                     json.loads(e.detail)) for e in events),
    )


@dataclass(frozen=True)
class OpenHandoff:
    """One row of ``open_by_agency``: what a wallboard shows per agency."""

    agency_id: str
    agency_name: str
    regency_code: str
    incident_id: int
    incident_type: str
    priority: int
    status: str
    dispatched_at: datetime
    since_dispatch_s: float
    acknowledged_at: datetime | None
    unacknowledged_alert: bool
