"""The console's incident API (/api/incidents..., /api/agencies): the same code as the CLI.

Who sees what: a supervisor every incident; an operator those of their regency and those
shared with it; an agency user (role ``agency``) only those handed to their agency, where
they acknowledge, move the steps on and add notes. Changes are published on /api/live as
``incident`` events, and unacknowledged hand-offs as ``alert`` events (the escalation).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request
from fastapi.responses import JSONResponse

from telephony.config import Config
from telephony.console.auth import WebSession, changing, current
from telephony.console.incident_schema import (
    AgencyView,
    Alert,
    CreateIncidentRequest,
    DispatchRequest,
    HandoffView,
    IncidentDetail,
    IncidentSummary,
    LinkRequest,
    NoteRequest,
    OpenHandoffView,
    Proposal,
    ShareRequest,
    StepRequest,
    TimelineView,
    UpdateIncidentRequest,
)
from telephony.console.live import Hub, Viewer, can_see
from telephony.incidents import (
    CallFacts,
    IncidentError,
    IncidentRecord,
    Incidents,
    OpenHandoff,
    agency_of,
    call_facts,
    eido,
    open_desk,
    webhook_body,
)
from telephony.incidents.webhook import Settings, Worker

router = APIRouter(prefix="/api")
IncidentId = Annotated[int, Path(ge=1, le=2**31 - 1)]
LinkedId = Annotated[str, Path(pattern=r"^[0-9A-Za-z._-]{1,150}$")]
Reader = Annotated[WebSession, Depends(current)]
Changer = Annotated[WebSession, Depends(changing)]


def _ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def summary(record: IncidentRecord) -> IncidentSummary:
    return IncidentSummary(
        id=record.id, type=record.type, subtype=record.subtype,  # type: ignore[arg-type]
        priority=record.priority, status=record.status,  # type: ignore[arg-type]
        regency_code=record.regency_code, shared_with=list(record.shared_with),
        agencies=[h.agency_id for h in record.handoffs], number=record.number,
        address=record.address, lat=record.lat, lon=record.lon, calls=len(record.calls),
        created_at=record.created_at.timestamp(), updated_at=record.updated_at.timestamp())


def detail(desk: Incidents, record: IncidentRecord) -> IncidentDetail:
    names = {a.id: a.name for a in desk.agencies.values()}
    return IncidentDetail(
        **summary(record).model_dump(), caller_lat=record.caller_lat,
        caller_lon=record.caller_lon, caller_radius_m=record.caller_radius_m,
        caller_source=record.caller_source, narrative=record.narrative, people=record.people,
        created_by=record.created_by, linkedids=list(record.calls),
        handoffs=[HandoffView(
            agency_id=h.agency_id, agency_name=names.get(h.agency_id, h.agency_id),
            status=h.status, dispatched_at=h.dispatched_at.timestamp(),  # type: ignore[arg-type]
            dispatched_by=h.dispatched_by, delivered_at=_ts(h.delivered_at),
            acknowledged_at=_ts(h.acknowledged_at), en_route_at=_ts(h.en_route_at),
            on_scene_at=_ts(h.on_scene_at), closed_at=_ts(h.closed_at),
            escalated_at=_ts(h.escalated_at)) for h in record.handoffs],
        timeline=[TimelineView(at=e.at.timestamp(), user=e.user, kind=e.kind,
                               agency_id=e.agency_id, regency_code=e.regency_code,
                               text=str(e.detail.get("text") or e.detail.get("note") or ""))
                  for e in record.timeline])


def incident_visible(viewer: Viewer, regencies: list[str], agencies: list[str]) -> bool:
    if viewer.supervisor:
        return True
    if viewer.agency_id:
        return viewer.agency_id in agencies
    return viewer.regency_code in regencies


def event_visible(viewer: Viewer, kind: str, data: dict[str, Any]) -> bool:
    """Which live ``incident`` and ``alert`` events a viewer receives."""
    if kind == "incident":
        item: IncidentSummary = data["incident"]
        return incident_visible(viewer, [item.regency_code, *item.shared_with], item.agencies)
    alert: Alert = data["alert"]
    return incident_visible(viewer, alert.regencies, [alert.agency_id])


def _desk(request: Request) -> Incidents:
    desk: Incidents = request.app.state.incidents
    return desk


def _visible(request: Request, session: WebSession, incident_id: int) -> IncidentRecord:
    record = _desk(request).get(incident_id)
    if not incident_visible(session.viewer, list(record.regencies),
                            [h.agency_id for h in record.handoffs]):
        raise HTTPException(403, "this incident is not shared with you")
    return record


def _centre_only(session: WebSession) -> None:
    if session.viewer.agency_id is not None:
        raise HTTPException(403, "agency users acknowledge, move steps on and add notes")


def _viewer_regency(session: WebSession) -> str:
    return session.viewer.regency_code or ""


@router.get("/incidents", response_model=list[IncidentSummary])
def incidents(request: Request, session: Reader) -> list[IncidentSummary]:
    return [summary(r) for r in _desk(request).listing()
            if incident_visible(session.viewer, list(r.regencies),
                                [h.agency_id for h in r.handoffs])]


@router.get("/incidents/open-by-agency", response_model=list[OpenHandoffView])
def open_by_agency(request: Request, session: Reader) -> list[OpenHandoffView]:
    """Open hand-offs by agency, time since dispatch, unacknowledged alert (the wallboard)."""
    if not session.viewer.supervisor:
        raise HTTPException(403, "the open hand-offs of every agency are for supervisors")
    return [OpenHandoffView(**{**h.__dict__, "dispatched_at": h.dispatched_at.timestamp(),
                               "acknowledged_at": _ts(h.acknowledged_at)})
            for h in _desk(request).open_by_agency()]


@router.get("/incidents/{incident_id}", response_model=IncidentDetail,
            responses={403: {}, 404: {}})
def incident(request: Request, incident_id: IncidentId, session: Reader) -> IncidentDetail:
    return detail(_desk(request), _visible(request, session, incident_id))


@router.get("/incidents/{incident_id}/export", responses={403: {}, 404: {}})
def export(request: Request, incident_id: IncidentId, session: Reader) -> dict[str, Any]:
    """The incident as JSON with NENA EIDO's names, locations as PIDF-LO."""
    record = _visible(request, session, incident_id)
    return eido(record, request.app.state.incident_system)


def _facts(request: Request, session: WebSession, linkedid: str) -> CallFacts:
    hub: Hub = request.app.state.hub
    card = hub.card(linkedid)
    if card is not None and not can_see(session.viewer, card):
        raise HTTPException(403, "this call belongs to another regency")
    facts = call_facts(hub.engine, linkedid)
    if card is not None and (facts is None or facts.lat is None):
        # The live card is ahead of the store while serve's writer catches up.
        where = card.location
        facts = CallFacts(linkedid, card.number, card.regency_code, card.emergency_type,
                          where.lat if where else None, where.lon if where else None,
                          where.radius_m if where else None, where.source if where else "")
    if facts is None:
        raise HTTPException(404, f"no call {linkedid}")
    if card is None and not session.viewer.supervisor and \
            facts.regency_code != session.viewer.regency_code:
        raise HTTPException(403, "this call belongs to another regency")
    # An operator's incident belongs to their own centre, even for an overflowed call.
    return replace(facts, regency_code=session.viewer.regency_code or facts.regency_code)


@router.post("/incidents", response_model=IncidentDetail,
             responses={403: {}, 404: {}, 422: {}, 503: {}})
def create(request: Request, body: CreateIncidentRequest, session: Changer) -> IncidentDetail:
    _centre_only(session)
    facts = _facts(request, session, body.linkedid)
    desk = _desk(request)
    return detail(desk, desk.create(session.account.name, facts, incident_type=body.type,
                                    note=body.note))


@router.get("/calls/{linkedid}/proposals", response_model=list[Proposal],
            responses={403: {}, 404: {}})
def proposals(request: Request, linkedid: LinkedId, session: Reader) -> list[Proposal]:
    """Open incidents near this caller and recent enough: one action links the call."""
    _centre_only(session)
    facts = _facts(request, session, linkedid)
    if facts.lat is None or facts.lon is None:
        return []
    return [Proposal(incident=summary(record), distance_m=round(metres, 1))
            for record, metres in _desk(request).proposals(facts.lat, facts.lon, facts.radius_m)
            if linkedid not in record.calls]


@router.post("/incidents/{incident_id}/calls", response_model=IncidentDetail,
             responses={403: {}, 404: {}, 409: {}, 503: {}})
def link(request: Request, incident_id: IncidentId, body: LinkRequest,
         session: Changer) -> IncidentDetail:
    _centre_only(session)
    facts = _facts(request, session, body.linkedid)
    desk = _desk(request)
    record = desk.get(incident_id)
    regency = session.viewer.regency_code
    if regency and regency not in record.regencies:
        # Another regency's incident near this caller (the Bromo case): linking the call
        # makes this regency one that shares it. Only an incident proposed for the call.
        near = facts.lat is not None and facts.lon is not None and any(
            r.id == incident_id for r, _m in desk.proposals(facts.lat, facts.lon,
                                                            facts.radius_m))
        if not near:
            raise HTTPException(403, "this incident is not shared with you")
        desk.share(session.account.name, incident_id, regency)
    else:
        _visible(request, session, incident_id)
    return detail(desk, desk.link(session.account.name, incident_id, body.linkedid))


@router.patch("/incidents/{incident_id}", response_model=IncidentDetail,
              responses={403: {}, 404: {}, 409: {}, 422: {}, 503: {}})
def update(request: Request, incident_id: IncidentId, body: UpdateIncidentRequest,
           session: Changer) -> IncidentDetail:
    _centre_only(session)
    _visible(request, session, incident_id)
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise HTTPException(422, "nothing to change")
    desk = _desk(request)
    return detail(desk, desk.update(session.account.name, incident_id, changes))


@router.post("/incidents/{incident_id}/notes", response_model=IncidentDetail,
             responses={403: {}, 404: {}, 422: {}, 503: {}})
def note(request: Request, incident_id: IncidentId, body: NoteRequest,
         session: Changer) -> IncidentDetail:
    _visible(request, session, incident_id)
    desk = _desk(request)
    return detail(desk, desk.note(session.account.name, incident_id, body.text,
                                  regency_code=_viewer_regency(session),
                                  agency_id=session.viewer.agency_id or ""))


@router.post("/incidents/{incident_id}/dispatch", response_model=IncidentDetail,
             responses={403: {}, 404: {}, 409: {}, 422: {}, 503: {}})
def dispatch(request: Request, incident_id: IncidentId, body: DispatchRequest,
             session: Changer) -> IncidentDetail:
    _centre_only(session)
    _visible(request, session, incident_id)
    desk = _desk(request)
    agency = desk.agencies.get(body.agency_id)
    if agency is not None and not session.viewer.supervisor and \
            agency.regency_code != session.viewer.regency_code:
        raise HTTPException(403, "a centre dispatches its own regency's agencies")
    record = desk.dispatch(session.account.name, incident_id, body.agency_id,
                           webhook_body(request.app.state.incident_system))
    request.app.state.incident_worker.wake()
    return detail(desk, record)


@router.post("/incidents/{incident_id}/share", response_model=IncidentDetail,
             responses={403: {}, 404: {}, 409: {}, 422: {}, 503: {}})
def share(request: Request, incident_id: IncidentId, body: ShareRequest,
          session: Changer) -> IncidentDetail:
    _centre_only(session)
    _visible(request, session, incident_id)
    desk = _desk(request)
    return detail(desk, desk.share(session.account.name, incident_id, body.regency_code))


@router.post("/incidents/{incident_id}/steps", response_model=IncidentDetail,
             responses={403: {}, 404: {}, 409: {}, 422: {}, 503: {}})
def step(request: Request, incident_id: IncidentId, body: StepRequest,
         session: Changer) -> IncidentDetail:
    agency_id = session.viewer.agency_id
    if agency_id is None:
        if not session.viewer.supervisor or body.agency_id is None:
            raise HTTPException(403, "an agency's steps are taken by that agency's users")
        agency_id = body.agency_id
    _visible(request, session, incident_id)
    desk = _desk(request)
    return detail(desk, desk.step(session.account.name, incident_id, agency_id, body.step))


@router.post("/incidents/{incident_id}/close", response_model=IncidentDetail,
             responses={403: {}, 404: {}, 409: {}, 503: {}})
def close(request: Request, incident_id: IncidentId, session: Changer) -> IncidentDetail:
    _centre_only(session)
    _visible(request, session, incident_id)
    desk = _desk(request)
    return detail(desk, desk.close(session.account.name, incident_id))


@router.get("/agencies", response_model=list[AgencyView])
def agencies(request: Request, session: Reader) -> list[AgencyView]:
    return [AgencyView(id=a.id, name=a.name, kind=a.kind, number=a.number,
                       regency_code=a.regency_code, ack_timeout_s=a.ack_timeout_s,
                       webhook=bool(a.webhook_url))
            for a in _desk(request).agencies.values()]


def install(app: FastAPI, config: Config, hub: Hub) -> Worker:
    """Build the desk and its outbox worker on the app; the lifespan starts the worker."""
    audit = app.state.actions.audit
    wallboard = app.state.wallboard

    def changed(record: IncidentRecord) -> None:
        wallboard.stale()
        hub.feed.publish("incident", {"incident": summary(record)})

    desk = open_desk(config, hub.engine, hub.regions, audit, changed)

    def alerted(handoff: OpenHandoff) -> None:
        record = desk.get(handoff.incident_id)
        wallboard.stale()
        hub.feed.publish("alert", {"alert": Alert(
            agency_id=handoff.agency_id, agency_name=handoff.agency_name,
            regency_code=handoff.regency_code, incident_id=handoff.incident_id,
            incident_type=handoff.incident_type, priority=handoff.priority,
            regencies=list(record.regencies), dispatched_at=handoff.dispatched_at.timestamp(),
            since_dispatch_s=handoff.since_dispatch_s)})

    settings = config.incidents
    worker = Worker(desk, Settings(settings.webhook_timeout_s, settings.retry_first_s,
                                   settings.retry_max_s, settings.outbox_interval_s,
                                   settings.webhook_ca_file), alerted)
    app.state.incidents = desk
    wallboard.incidents = desk
    app.state.incident_worker = worker
    app.state.incident_system = settings.system_id

    @app.exception_handler(IncidentError)
    async def refused(_request: Request, exc: IncidentError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    app.include_router(router)
    return worker


def agency_viewer(hub: Hub, viewer: Viewer, name: str) -> Viewer:
    """An agency user's viewer: no calls, the hand-offs of their agency."""
    return replace(viewer, agency_id=agency_of(hub.engine, name) or "-")
