"""The console's JSON API (/api/...): everything a page offers, for scripts and other centres too.

Auth is a dependency on each route: ``current`` (a session, else 401) for reads, ``changing``
(a session and its CSRF token, else 401/403) for state changes.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, WebSocket
from fastapi.websockets import WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from telephony.callbacks import items as callbacks
from telephony.console import accounts
from telephony.console.accounts import Role
from telephony.console.actions import Actions
from telephony.console.auth import (
    COOKIE,
    LoginThrottle,
    Sessions,
    WebSession,
    changing,
    current,
    for_websocket,
)
from telephony.console.feed import Entry
from telephony.console.incident_api import agency_viewer, event_visible
from telephony.console.live import Hub, can_see, viewer_for
from telephony.console.schema import (
    CallbackDoneRequest,
    CallbackItem,
    Card,
    ClassifyRequest,
    Done,
    HandoverRequest,
    LiveEvent,
    LoginRequest,
    Me,
    Presence,
    PresenceRequest,
    RegencyPoint,
    Snapshot,
    Status,
)
from telephony.operators import presence
from telephony.operators.presence import State
from telephony.operators.roster import Operator

router = APIRouter(prefix="/api")
LinkedId = Annotated[str, Path(pattern=r"^[0-9A-Za-z._-]{1,150}$")]
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Reader = Annotated[WebSession, Depends(current)]
Changer = Annotated[WebSession, Depends(changing)]


def _hub(request: Request | WebSocket) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _actions(request: Request) -> Actions:
    actions: Actions = request.app.state.actions
    return actions


def _operator(request: Request, session: WebSession) -> Operator:
    op_id = session.account.operator_id
    op = _hub(request).roster.get(op_id or "")
    if op is None:
        raise HTTPException(409, "this account is not tied to an operator of the roster")
    return op


def _me(request: Request, session: WebSession) -> Me:
    hub = _hub(request)
    op = hub.roster.get(session.account.operator_id or "")
    regency = hub.regions.regencies.get(op.regency) if op else None
    state = None
    if op is not None:
        row = presence.states(hub.engine).get(op.id)
        state = Presence(operator_id=op.id, state=row.state if row else "logged-out",  # type: ignore[arg-type]
                         reason=row.pause_reason if row else None)
    return Me(name=session.account.name, role=session.account.role.value,
              operator_id=op.id if op else None, regency_code=op.regency if op else None,
              regency_name=regency.name if regency else None, presence=state,
              csrf_token=session.csrf, agency_id=session.viewer.agency_id)


@router.post("/login", response_model=Me, responses={401: {}, 429: {}})
async def login(body: LoginRequest, request: Request, response: Response) -> Me:
    throttle: LoginThrottle = request.app.state.throttle
    address = request.client.host if request.client else "?"
    keys = (f"name:{body.name}", f"addr:{address}")
    wait = throttle.blocked(*keys)
    if wait > 0:
        raise HTTPException(429, f"too many failed logins: try again in {wait:.0f} s",
                            headers={"Retry-After": str(int(wait) + 1)})
    hub = _hub(request)
    account = await run_in_threadpool(accounts.authenticate, hub.engine, body.name, body.password)
    if account is None:
        throttle.failed(*keys)
        raise HTTPException(401, "wrong name or password")
    throttle.succeeded(keys[0])
    op = hub.roster.get(account.operator_id or "")
    viewer = viewer_for(account.name, account.role is Role.SUPERVISOR, op, hub.regions)
    if account.role is Role.AGENCY:
        viewer = await run_in_threadpool(agency_viewer, hub, viewer, account.name)
    sessions: Sessions = request.app.state.sessions
    session = sessions.create(account, viewer)
    response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict",
                        secure=request.app.state.https, path="/")
    await run_in_threadpool(_actions(request).login, account.name, address)
    return await run_in_threadpool(_me, request, session)


@router.post("/logout", response_model=Done)
def logout(request: Request, response: Response, session: Changer) -> Done:
    sessions: Sessions = request.app.state.sessions
    sessions.end(session.token)
    response.delete_cookie(COOKIE, path="/")
    return Done()


@router.get("/me", response_model=Me)
def me(request: Request, session: Reader) -> Me:
    return _me(request, session)


@router.get("/status", response_model=Status)
def status(request: Request, session: Reader) -> Status:
    return _hub(request).status


@router.get("/regions", response_model=list[RegencyPoint])
def regions(request: Request, session: Reader) -> list[RegencyPoint]:
    return [RegencyPoint(code=r.code, name=r.name, point=p.name, lat=p.lat, lon=p.lon,
                         launch=r.launch)
            for r in _hub(request).regions.regencies.values() for p in r.points]


@router.get("/calls", response_model=list[Card])
def calls(request: Request, session: Reader) -> list[Card]:
    return _hub(request).cards(session.viewer)


def _visible_card(request: Request, session: WebSession, linkedid: str) -> Card:
    card = _hub(request).card(linkedid)
    if card is None:
        raise HTTPException(404, f"no call {linkedid} on the console")
    if not can_see(session.viewer, card):
        raise HTTPException(403, "this call belongs to another regency")
    return card


@router.get("/calls/{linkedid}", response_model=Card, responses={403: {}, 404: {}})
def call(request: Request, linkedid: LinkedId, session: Reader) -> Card:
    return _visible_card(request, session, linkedid)


@router.post("/calls/{linkedid}/classification", response_model=Done,
             responses={403: {}, 404: {}, 503: {}})
def classify(request: Request, linkedid: LinkedId, body: ClassifyRequest,
             session: Changer) -> Done:
    _visible_card(request, session, linkedid)
    _actions(request).classify(session.account.name, linkedid, body.category, body.note)
    _hub(request).classified(linkedid, body.category, body.note, session.account.name)
    return Done(detail="recorded")


@router.post("/calls/{linkedid}/handover", response_model=Done,
             responses={403: {}, 404: {}, 409: {}, 422: {}, 503: {}})
def handover(request: Request, linkedid: LinkedId, body: HandoverRequest,
             session: Changer) -> Done:
    _visible_card(request, session, linkedid)
    op = _operator(request, session)
    channel = _hub(request).operator_channel(linkedid, op.id)
    card = _hub(request).card(linkedid)
    if channel is None or card is None or card.answered_by != op.id:
        raise HTTPException(409, "only the operator talking to the caller can hand over")
    _actions(request).handover(session.account.name, linkedid, channel, body.regency_code)
    # The call keeps its incident, which the receiving regency now sees.
    request.app.state.incidents.follow_handover(session.account.name, linkedid,
                                                body.regency_code)
    return Done(detail=f"handed over to {body.regency_code}")


@router.post("/presence", response_model=Presence, responses={409: {}, 503: {}})
def set_presence(request: Request, body: PresenceRequest, session: Changer) -> Presence:
    op = _operator(request, session)
    state = State(body.state)
    reason = (body.reason or "break") if state is State.PAUSED else None
    _actions(request).set_presence(session.account.name, op, state, reason)
    now = Presence(operator_id=op.id, state=body.state, reason=reason)
    _hub(request).feed.publish("presence", {"presence": now})
    return now


def _callback_visible(session: WebSession, item: callbacks.CallbackItem) -> bool:
    return session.viewer.supervisor or item.regency_code == session.viewer.regency_code


@router.get("/callbacks", response_model=list[CallbackItem])
def callback_list(request: Request, session: Reader) -> list[CallbackItem]:
    rows = callbacks.items(_hub(request).engine)
    return [CallbackItem(id=r.id, caller=r.caller, status=r.status, attempts=r.attempts,
                         emergency_type=r.emergency_type, regency_code=r.regency_code,
                         waited_s=r.waited_s, created_at=r.created_at.isoformat(),
                         taken_by=r.taken_by)
            for r in rows if _callback_visible(session, r)]


def _callback(request: Request, session: WebSession, item_id: int) -> None:
    found = [r for r in callbacks.items(_hub(request).engine, include_done=True)
             if r.id == item_id]
    if not found:
        raise HTTPException(404, f"no callback item {item_id}")
    if not _callback_visible(session, found[0]):
        raise HTTPException(403, "this callback belongs to another regency")


@router.post("/callbacks/{item_id}/take", response_model=Done,
             responses={403: {}, 404: {}, 409: {}, 503: {}})
def callback_take(request: Request, item_id: ItemId, session: Changer) -> Done:
    _callback(request, session, item_id)
    item = _actions(request).take_callback(session.account.name, item_id,
                                           _operator(request, session))
    return Done(detail=f"ringing your phone, then {item.caller}")


@router.post("/callbacks/{item_id}/done", response_model=Done,
             responses={403: {}, 404: {}, 409: {}, 503: {}})
def callback_done(request: Request, item_id: ItemId, body: CallbackDoneRequest,
                  session: Changer) -> Done:
    _callback(request, session, item_id)
    _actions(request).finish_callback(session.account.name, item_id, body.outcome)
    return Done(detail="done")


def _visible(session: WebSession, entry: Entry) -> bool:
    if entry.kind == "call":
        return can_see(session.viewer, entry.data["call"])
    if entry.kind in ("incident", "alert"):
        return event_visible(session.viewer, entry.kind, entry.data)
    if entry.kind == "presence":
        return session.viewer.supervisor or \
            entry.data["presence"].operator_id == session.viewer.operator_id
    return True


def _event(entry: Entry) -> LiveEvent:
    """The entry as sent, built and serialised once however many clients receive it."""
    event: LiveEvent | None = entry.cache.get("event")
    if event is None:
        event = LiveEvent(seq=entry.seq, kind=entry.kind, **entry.data)  # type: ignore[arg-type]
        entry.cache["event"] = event
        entry.cache["json"] = event.model_dump_json()
    return event


def _event_json(entry: Entry) -> str:
    _event(entry)
    text: str = entry.cache["json"]
    return text


@router.websocket("/live")
async def live(websocket: WebSocket, since: Annotated[int, Query(ge=0)] = 0,
               epoch: Annotated[str, Query(max_length=64)] = "") -> None:
    """A snapshot, then every visible event after ``since``, then events as they happen."""
    session = for_websocket(websocket)
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host", "")
    if session is None or (origin is not None and origin.split("://", 1)[-1] != host):
        await websocket.close(code=4401)
        return
    hub = _hub(websocket)
    feed = hub.feed
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()
    feed.subscribe(loop, wake)
    await websocket.accept()
    try:
        if epoch != feed.epoch:
            since = 0  # numbers from an earlier console run mean nothing now
        sent = feed.seq
        entries, complete = feed.since(since)
        missed = [_event(x) for x in entries if x.seq <= sent and _visible(session, x)]
        snapshot = Snapshot(epoch=feed.epoch, seq=sent, calls=hub.cards(session.viewer),
                            status=hub.status, missed=missed, complete=complete)
        await websocket.send_text(snapshot.model_dump_json())
        while True:
            await wake.wait()
            wake.clear()
            entries, _ = feed.since(sent)
            for entry in entries:
                sent = entry.seq
                if _visible(session, entry):
                    await websocket.send_text(_event_json(entry))
            if _session_ended(websocket, session):
                await websocket.close(code=4401)
                return
    except WebSocketDisconnect:
        pass
    finally:
        feed.unsubscribe(loop, wake)


def _session_ended(websocket: WebSocket, session: WebSession) -> bool:
    """A logged-out or expired session stops receiving at once."""
    return for_websocket(websocket) is not session
