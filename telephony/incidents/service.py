"""What can be done to an incident, for the console's API and the CLI alike (one code path).

Every change is written with its timeline row and, inside the same transaction, entered into
the audit chain by the ``Auditor`` (the console's ConsoleAction UserEvent, or the CLI's AMI
session as user ``cli``): the audit record goes first and the transaction commits only if
Asterisk took it, so no change is left unaudited. The chained event carries the SHA-256 of
the timeline row (the full text stays in the database: AMI lines are short), under the
linkedid of the call concerned, else of the call the incident was created from (the audit
writer chains only events with a channel identity).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from telephony.audit.events import canonical_json
from telephony.errors import TelephonyError
from telephony.incidents.agencies import Agency
from telephony.incidents.call import CallFacts
from telephony.incidents.models import (
    Handoff,
    Incident,
    IncidentCall,
    IncidentEvent,
    IncidentShare,
    Outbox,
)
from telephony.incidents.record import (
    AGENCY_STEPS,
    STEPS,
    TYPES,
    IncidentRecord,
    OpenHandoff,
    read,
)
from telephony.location.geometry import distance_m
from telephony.location.region import Regions

# Fields an operator may change after creation, and notes: text stays text (no markup).
EDITABLE = ("type", "subtype", "priority", "lat", "lon", "address", "narrative", "people")
TEXT_MAX = {"subtype": 64, "address": 500, "narrative": 4000, "people": 1000, "note": 1000}
_STEP_COLUMN = {"acknowledged": "acknowledged_at", "en-route": "en_route_at",
                "on-scene": "on_scene_at", "closed": "closed_at"}


class IncidentError(TelephonyError):
    """The change cannot be made; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Auditor(Protocol):
    def __call__(self, user: str, action: str, linkedid: str = "", **fields: str) -> None: ...


def now() -> datetime:
    return datetime.now(UTC)


def clean_text(field: str, value: str) -> str:
    """Typed text as stored: any characters but control ones (newline and tab are text)."""
    if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in value):
        raise IncidentError(422, f"{field} may not contain control characters")
    if len(value) > TEXT_MAX.get(field, 1000):
        raise IncidentError(422, f"{field} is longer than {TEXT_MAX.get(field, 1000)} characters")
    return value


class Incidents:
    def __init__(self, engine: Engine, regions: Regions, agencies: dict[str, Agency],
                 audit: Auditor, *, link_distance_m: float, link_window_s: float,
                 on_change: Callable[[IncidentRecord], None] | None = None) -> None:
        self.engine = engine
        self.regions = regions
        self.agencies = agencies
        self._audit = audit
        self.link_distance_m = link_distance_m
        self.link_window_s = link_window_s
        self._on_change = on_change

    # reading -----------------------------------------------------------------
    def get(self, incident_id: int) -> IncidentRecord:
        with Session(self.engine) as session:
            row = session.get(Incident, incident_id)
            if row is None:
                raise IncidentError(404, f"no incident {incident_id}")
            return read(session, row)

    def listing(self, *, open_only: bool = True, limit: int = 200) -> list[IncidentRecord]:
        with Session(self.engine) as session:
            query = select(Incident).order_by(Incident.id.desc()).limit(limit)
            if open_only:
                query = query.where(Incident.status != "closed")
            return [read(session, row) for row in session.scalars(query)]

    def of_call(self, linkedid: str) -> list[int]:
        with Session(self.engine) as session:
            return list(session.scalars(select(IncidentCall.incident_id).where(
                IncidentCall.linkedid == linkedid)))

    def proposals(self, lat: float, lon: float, radius_m: float | None = None,
                  at: datetime | None = None) -> list[tuple[IncidentRecord, float]]:
        """Open incidents near the caller and recent enough, nearest first, with distances."""
        since = (at or now()) - timedelta(seconds=self.link_window_s)
        reach = self.link_distance_m + (radius_m or 0.0)
        found = []
        with Session(self.engine) as session:
            rows = session.scalars(select(Incident).where(Incident.status != "closed",
                                                          Incident.updated_at >= since))
            for row in rows:
                record = read(session, row)
                point = record.point
                if point is None:
                    continue
                metres = distance_m(lat, lon, *point)
                if metres <= reach:
                    found.append((record, metres))
        return sorted(found, key=lambda pair: pair[1])

    def open_by_agency(self, at: datetime | None = None) -> list[OpenHandoff]:
        """Open hand-offs of open incidents, by agency, with the time since dispatch and
        whether the escalation alert (not acknowledged in time) is up."""
        moment = at or now()
        with Session(self.engine) as session:
            rows = session.execute(select(Handoff, Incident).join(
                Incident, Incident.id == Handoff.incident_id).where(
                Incident.status != "closed", Handoff.status != "closed")
                .order_by(Handoff.agency_id, Handoff.dispatched_at)).all()
        result = []
        for handoff, incident in rows:
            agency = self.agencies.get(handoff.agency_id)
            result.append(OpenHandoff(
                handoff.agency_id, agency.name if agency else handoff.agency_id,
                agency.regency_code if agency else "", incident.id, incident.type,
                incident.priority, handoff.status, handoff.dispatched_at,
                (moment - handoff.dispatched_at).total_seconds(), handoff.acknowledged_at,
                handoff.escalated_at is not None and handoff.acknowledged_at is None))
        return result

    # changing ----------------------------------------------------------------
    @contextmanager
    def _changing(self, incident_id: int) -> Iterator[tuple[Session, Incident]]:
        with Session(self.engine) as session:
            row = session.get(Incident, incident_id, with_for_update=True)
            if row is None:
                raise IncidentError(404, f"no incident {incident_id}")
            yield session, row

    def _record(self, session: Session, row: Incident, user: str, kind: str, *,
                linkedid: str = "", agency_id: str = "", regency_code: str = "",
                detail: dict[str, Any] | None = None, audited: bool = True) -> None:
        """The timeline row, then the chained audit event that pins its digest; commits."""
        at = now()
        body = detail or {}
        digest = hashlib.sha256(canonical_json({
            "incident": row.uuid, "at": at.isoformat(), "user": user, "kind": kind,
            "agency": agency_id, "regency": regency_code, "detail": body,
        }).encode()).hexdigest()
        row.updated_at = at
        session.add(IncidentEvent(incident_id=row.id, at=at, user=user, kind=kind,
                                  agency_id=agency_id, regency_code=regency_code,
                                  detail=canonical_json(body), digest=digest))
        session.flush()
        if not linkedid:
            # The audit writer takes no event without a channel identity: an incident's
            # changes are chained under the call it was created from.
            linkedid = session.scalars(select(IncidentCall.linkedid).where(
                IncidentCall.incident_id == row.id).order_by(IncidentCall.linked_at)).first() or ""
        fields = {"Incident": str(row.id), "Digest": digest}
        if agency_id:
            fields["Agency"] = agency_id
        if regency_code:
            fields["Regency"] = regency_code
        try:
            self._audit(user, f"incident-{kind}", linkedid, **fields)
        except Exception:
            if audited:
                session.rollback()
                raise
        session.commit()

    def _changed(self, incident_id: int) -> IncidentRecord:
        record = self.get(incident_id)
        if self._on_change is not None:
            self._on_change(record)
        return record

    def create(self, user: str, facts: CallFacts, *, incident_type: str | None = None,
               note: str = "") -> IncidentRecord:
        """One action from a call: its number, location, type and linkedid prefilled."""
        kind = incident_type or (facts.emergency_type if facts.emergency_type in TYPES
                                 else "other")
        if kind not in TYPES:
            raise IncidentError(422, f"type must be one of {', '.join(TYPES)}")
        note = clean_text("note", note)
        regency = facts.regency_code if facts.regency_code in self.regions.regencies else ""
        if not regency:
            raise IncidentError(422, f"call {facts.linkedid} has no regency to own the incident")
        at = now()
        with Session(self.engine) as session:
            row = Incident(uuid=str(uuid.uuid4()), regency_code=regency, type=kind, subtype="",
                           priority=2, status="created", number=facts.number,
                           caller_lat=facts.lat, caller_lon=facts.lon,
                           caller_radius_m=facts.radius_m, caller_source=facts.source,
                           address="", narrative=note, people="", created_at=at,
                           created_by=user, updated_at=at)
            session.add(row)
            session.flush()
            session.add(IncidentCall(incident_id=row.id, linkedid=facts.linkedid, linked_at=at,
                                     linked_by=user))
            self._record(session, row, user, "created", linkedid=facts.linkedid,
                         regency_code=regency, detail={"type": kind, "note": note,
                                                       "call": facts.linkedid})
            incident_id = row.id
        return self._changed(incident_id)

    def link(self, user: str, incident_id: int, linkedid: str) -> IncidentRecord:
        with self._changing(incident_id) as (session, row):
            if row.status == "closed":
                raise IncidentError(409, f"incident {incident_id} is closed")
            if session.get(IncidentCall, (incident_id, linkedid)) is not None:
                raise IncidentError(409, f"call {linkedid} is already linked")
            session.add(IncidentCall(incident_id=incident_id, linkedid=linkedid,
                                     linked_at=now(), linked_by=user))
            self._record(session, row, user, "linked", linkedid=linkedid,
                         detail={"call": linkedid})
        return self._changed(incident_id)

    def update(self, user: str, incident_id: int, changes: dict[str, Any]) -> IncidentRecord:
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise IncidentError(422, f"not editable: {', '.join(sorted(unknown))}")
        if "type" in changes and changes["type"] not in TYPES:
            raise IncidentError(422, f"type must be one of {', '.join(TYPES)}")
        for field in ("subtype", "address", "narrative", "people"):
            if field in changes:
                changes[field] = clean_text(field, str(changes[field]))
        with self._changing(incident_id) as (session, row):
            if row.status == "closed":
                raise IncidentError(409, f"incident {incident_id} is closed")
            for field, value in changes.items():
                setattr(row, field, value)
            self._record(session, row, user, "updated", detail=changes)
        return self._changed(incident_id)

    def note(self, user: str, incident_id: int, text: str, *, regency_code: str = "",
             agency_id: str = "") -> IncidentRecord:
        text = clean_text("note", text)
        if not text.strip():
            raise IncidentError(422, "the note is empty")
        with self._changing(incident_id) as (session, row):
            self._record(session, row, user, "note", regency_code=regency_code,
                         agency_id=agency_id, detail={"text": text})
        return self._changed(incident_id)

    def share(self, user: str, incident_id: int, regency_code: str) -> IncidentRecord:
        if regency_code not in self.regions.regencies:
            raise IncidentError(422, f"no regency {regency_code}")
        with self._changing(incident_id) as (session, row):
            if regency_code == row.regency_code or session.get(
                    IncidentShare, (incident_id, regency_code)) is not None:
                raise IncidentError(409, f"incident {incident_id} is already seen by "
                                         f"{regency_code}")
            session.add(IncidentShare(incident_id=incident_id, regency_code=regency_code,
                                      shared_at=now(), shared_by=user))
            self._record(session, row, user, "shared", regency_code=regency_code)
        return self._changed(incident_id)

    def dispatch(self, user: str, incident_id: int, agency_id: str,
                 body: Callable[[IncidentRecord, str], str]) -> IncidentRecord:
        """Hand the incident to an agency; its webhook delivery is queued in the same
        transaction (the outbox), so a restart between the two cannot lose it."""
        agency = self.agencies.get(agency_id)
        if agency is None:
            raise IncidentError(422, f"no agency {agency_id!r} in the agencies file")
        with self._changing(incident_id) as (session, row):
            if row.status == "closed":
                raise IncidentError(409, f"incident {incident_id} is closed")
            if agency.regency_code not in (row.regency_code, *session.scalars(
                    select(IncidentShare.regency_code).where(
                        IncidentShare.incident_id == incident_id))):
                raise IncidentError(422, f"{agency_id} serves {agency.regency_code}, which "
                                         "does not see this incident: share it first")
            existing = session.scalars(select(Handoff).where(
                Handoff.incident_id == incident_id, Handoff.agency_id == agency_id)).first()
            if existing is not None:
                raise IncidentError(409, f"incident {incident_id} is already with {agency_id}")
            at = now()
            handoff = Handoff(incident_id=incident_id, agency_id=agency_id, status="dispatched",
                              dispatched_at=at, dispatched_by=user)
            session.add(handoff)
            if row.status == "created":
                row.status = "dispatched"
            session.flush()
            if agency.webhook_url:
                key = uuid.uuid4().hex
                session.add(Outbox(handoff_id=handoff.id, agency_id=agency_id,
                                   idempotency_key=key, body=body(read(session, row), key),
                                   created_at=at, attempts=0, next_attempt_at=at,
                                   last_error=""))
            self._record(session, row, user, "dispatched", agency_id=agency_id,
                         regency_code=agency.regency_code)
        return self._changed(incident_id)

    def step(self, user: str, incident_id: int, agency_id: str, step: str) -> IncidentRecord:
        """An agency's own progress: acknowledged, en route, on scene, closed."""
        if step not in AGENCY_STEPS:
            raise IncidentError(422, f"step must be one of {', '.join(AGENCY_STEPS)}")
        with self._changing(incident_id) as (session, row):
            handoff = session.scalars(select(Handoff).where(
                Handoff.incident_id == incident_id, Handoff.agency_id == agency_id)).first()
            if handoff is None:
                raise IncidentError(404, f"incident {incident_id} was not handed to {agency_id}")
            if STEPS.index(step) <= STEPS.index(handoff.status):
                raise IncidentError(409, f"{agency_id} is already {handoff.status}")
            at = now()
            handoff.status = step
            for name in AGENCY_STEPS[:AGENCY_STEPS.index(step) + 1]:
                if getattr(handoff, _STEP_COLUMN[name]) is None:
                    setattr(handoff, _STEP_COLUMN[name], at)
            if step != "closed" and STEPS.index(step) > STEPS.index(row.status):
                row.status = step
            self._record(session, row, user, step, agency_id=agency_id)
        return self._changed(incident_id)

    def close(self, user: str, incident_id: int) -> IncidentRecord:
        with self._changing(incident_id) as (session, row):
            if row.status == "closed":
                raise IncidentError(409, f"incident {incident_id} is already closed")
            row.status = "closed"
            row.closed_at = now()
            self._record(session, row, user, "closed")
        return self._changed(incident_id)

    def follow_handover(self, user: str, linkedid: str, regency_code: str) -> None:
        """A call handed over to another regency keeps its incident, which that regency
        now sees."""
        for incident_id in self.of_call(linkedid):
            record = self.get(incident_id)
            if regency_code not in record.regencies and record.status != "closed":
                self.share(user, incident_id, regency_code)

    # the worker's --------------------------------------------------------------
    def delivered(self, handoff_id: int, attempts: int) -> IncidentRecord:
        with Session(self.engine) as session:
            handoff = session.get(Handoff, handoff_id)
            assert handoff is not None
            handoff.delivered_at = now()
            row = session.get(Incident, handoff.incident_id)
            assert row is not None
            self._record(session, row, "webhook", "delivered", agency_id=handoff.agency_id,
                         detail={"attempts": attempts}, audited=False)
            incident_id = row.id
        return self._changed(incident_id)

    def escalate(self, at: datetime | None = None) -> list[OpenHandoff]:
        """Mark the hand-offs not acknowledged within their agency's time; return them."""
        moment = at or now()
        raised = []
        with Session(self.engine) as session:
            rows = session.scalars(select(Handoff).where(
                Handoff.acknowledged_at.is_(None), Handoff.escalated_at.is_(None),
                Handoff.status == "dispatched")).all()
            due = [h for h in rows if h.agency_id in self.agencies and
                   (moment - h.dispatched_at).total_seconds()
                   >= self.agencies[h.agency_id].ack_timeout_s]
            for handoff in due:
                handoff.escalated_at = moment
                row = session.get(Incident, handoff.incident_id)
                assert row is not None
                self._record(session, row, "escalation", "escalated",
                             agency_id=handoff.agency_id, audited=False,
                             detail={"after_s": round((moment - handoff.dispatched_at)
                                                      .total_seconds(), 1)})
                raised.append(handoff.incident_id)
        for incident_id in raised:
            self._changed(incident_id)
        return [h for h in self.open_by_agency(moment)
                if h.incident_id in raised and h.unacknowledged_alert]
