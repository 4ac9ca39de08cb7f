"""The supervisor's wallboard: what it shows, as a registry of panels.

``Wallboard.build()`` gives every registered panel's data as one JSON-ready dict. A panel is
a function of a :class:`Context`; ``panel(name)`` registers one. The built-in panels are
``regencies`` (live queues and operators, from the console's board; today's counts, service
levels and callbacks, from the audit store), ``messages`` (each major message's effect),
``incidents`` (open hand-offs by agency with the time since dispatch and any unacknowledged
alert, from ``Incidents.open_by_agency``) and ``unmatched`` (handset fixes no call claimed).
Each has a renderer of the same name in static/wallboard.js.

Live figures come from memory at every call; the database figures are read at most once per
``DB_REFRESH_S`` for all wallboards together, so many screens cost the store nothing extra. An
incident change or alert marks them stale (:meth:`Wallboard.stale`), so the page's refresh after
that live event reads the hand-off as it is now.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from telephony.audit import tally
from telephony.audit.projection import Outcome
from telephony.audit.report import NENA_TARGETS, summarize
from telephony.callbacks import items as callbacks
from telephony.charts import Series, bars
from telephony.config import Config
from telephony.console.live import Hub, Viewer
from telephony.console.schema import Card
from telephony.incidents import Incidents
from telephony.messages import store as messages
from telephony.operators import presence
from telephony.operators.presence import State

DB_REFRESH_S = 1.0
RATE_WINDOW_MIN = 10
# Ended messages stay on the board this long, so their effect can still be read.
ENDED_SHOWN = timedelta(hours=1)
_ABANDONED = {Outcome.ABANDONED_IN_IVR.value, Outcome.ABANDONED_IN_QUEUE.value}
_ANSWERED = {Outcome.ANSWERED.value, Outcome.OVERFLOWED_THEN_ANSWERED.value}
_SUPERVISOR = Viewer("wallboard", True)


@dataclass
class Context:
    hub: Hub
    config: Config
    now: float
    cards: list[Card]
    stored: dict[str, Any]
    since: dict[str, tuple[str, float]]


Panel = Callable[[Context], object]
PANELS: dict[str, Panel] = {}


def panel(name: str) -> Callable[[Panel], Panel]:
    def register(fn: Panel) -> Panel:
        PANELS[name] = fn
        return fn
    return register


def local_zone(config: Config) -> tzinfo:
    return ZoneInfo(config.console.timezone)


def day_start(moment: datetime, zone: tzinfo) -> datetime:
    local = moment.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


class Wallboard:
    """One per console process (app.state.wallboard): the database half, read at most once
    per DB_REFRESH_S for every screen, and since when each operator is in their state."""

    def __init__(self, hub: Hub, config: Config) -> None:
        self.hub = hub
        self.config = config
        self.since: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._stored: dict[str, Any] = {}
        # The incident desk, once telephony.console.incident_api has built it.
        self.incidents: Incidents | None = None

    def stale(self) -> None:
        with self._lock:
            self._read_at = 0.0

    def build(self) -> dict[str, object]:
        with self._lock:
            if time.monotonic() - self._read_at >= DB_REFRESH_S or not self._stored:
                self._stored = _read_store(self.hub, self.config, self.incidents)
                self._read_at = time.monotonic()
            stored = self._stored
        context = Context(self.hub, self.config, time.time(), self.hub.cards(_SUPERVISOR),
                          stored, self.since)
        return {"now": context.now, "panels": {name: fn(context) for name, fn in PANELS.items()}}

    def chart(self) -> str:
        return hourly_chart(self.hub, self.config)


def _read_store(hub: Hub, config: Config, desk: Incidents | None) -> dict[str, Any]:
    now = datetime.now(UTC)
    start = day_start(now, local_zone(config))
    with Session(hub.engine) as session:
        today = tally.calls(session, start, now + timedelta(seconds=1))
        classified = tally.classifications(session, start)
        recent = messages.listing(hub.engine, since=now - ENDED_SHOWN)
        heard = tally.heard(session, min((m.created_at for m in recent), default=now))
    pending = [item for item in callbacks.items(hub.engine)
               if item.status != callbacks.Status.DONE.value]
    return {"today": today, "classified": classified, "messages": recent, "heard": heard,
            "callbacks": pending, "presence": presence.states(hub.engine),
            "handoffs": desk.open_by_agency() if desk is not None else []}


# regencies -------------------------------------------------------------------------------
def _operator_state(ctx: Context, op_id: str) -> tuple[str, str | None, float | None]:
    """free, ringing, on-call, wrap-up, paused (with its reason) or logged-out, and since
    (None for an operator who never logged in: no timer)."""
    live = [c for c in ctx.cards if c.ended_at is None]
    row = ctx.stored["presence"].get(op_id)
    since_row = row.updated_at.timestamp() if row is not None else None
    state, reason = "logged-out", None
    if any(c.answered_by == op_id for c in live):
        state = "on-call"
    elif any(op_id in c.ringing for c in live):
        state = "ringing"
    elif row is None or row.state == State.LOGGED_OUT.value:
        state = "logged-out"
    elif row.state == State.PAUSED.value:
        state, reason = "paused", row.pause_reason
    else:
        ended = [c.ended_at for c in ctx.cards if c.answered_by == op_id and c.ended_at]
        last = max(ended, default=0.0)
        state = "wrap-up" if ctx.now - last < ctx.config.operators.wrapup_s else "free"
    if state in ("paused", "logged-out"):
        return state, reason, since_row
    previous = ctx.since.get(op_id)
    if previous is None or previous[0] != state:
        ctx.since[op_id] = (state, ctx.now)
    return state, reason, ctx.since[op_id][1]


def _waiting(cards: list[Card]) -> list[Card]:
    return [c for c in cards if c.ended_at is None and c.phase in ("queued", "ringing")]


@panel("regencies")
def regencies(ctx: Context) -> list[dict[str, object]]:
    today = ctx.stored["today"]
    classified: dict[str, str] = ctx.stored["classified"]
    waiting = _waiting(ctx.cards)
    codes = [r.code for r in ctx.hub.regions.regencies.values() if r.launch]
    rows = []
    for code in codes:
        mine = [c for c in today if c.regency_code == code and not c.is_callback]
        finished = [(Outcome(c.outcome), c.answer_seconds) for c in mine if c.outcome]
        level = summarize(code, finished)
        queue = [c for c in waiting if c.regency_code == code]
        since = [c.hops[0].at if c.hops else c.arrived_at for c in queue]
        ops = [op for op in ctx.hub.roster.values() if op.regency == code]
        states = []
        for op in sorted(ops, key=lambda o: o.id):
            state, reason, at = _operator_state(ctx, op.id)
            states.append({"id": op.id, "state": state, "reason": reason, "since": at})
        ids = {c.linkedid for c in mine}
        rows.append({
            "code": code, "name": ctx.hub.regions.regencies[code].name,
            "waiting": len(queue), "longest_since": min(since) if since else None,
            "operators": states,
            "answered": sum(1 for c in mine if c.outcome in _ANSWERED),
            "abandoned": sum(1 for c in mine if c.outcome in _ABANDONED),
            "ghost": sum(1 for k, v in classified.items() if v == "ghost" and k in ids),
            "prank": sum(1 for k, v in classified.items() if v == "prank" and k in ids),
            "offered": level.offered,
            "within": [{"seconds": s, "share": level.within_s[s], "target": t}
                       for s, t in NENA_TARGETS],
            "callbacks": sum(1 for i in ctx.stored["callbacks"] if i.regency_code == code),
        })
    return rows


# messages --------------------------------------------------------------------------------
@panel("messages")
def message_effect(ctx: Context) -> list[dict[str, object]]:
    today = ctx.stored["today"]
    heard: dict[str, str] = ctx.stored["heard"]
    outcome = {c.linkedid: c.outcome for c in today}
    window_start = datetime.fromtimestamp(ctx.now, UTC) - timedelta(minutes=RATE_WINDOW_MIN)
    rows = []
    for row in ctx.stored["messages"]:
        area = row.area
        recent = [c for c in today if c.arrived_at >= window_start
                  and area.covers(c.regency_code or "", c.lat, c.lon)]
        listeners = [k for k, v in heard.items() if v == str(row.id)]
        data = messages.as_dict(row)
        data.update(area=area.describe(), heard=len(listeners),
                    hung_up_after=sum(1 for k in listeners if outcome.get(k) in _ABANDONED),
                    per_minute=round(len(recent) / RATE_WINDOW_MIN, 1))
        rows.append(data)
    return rows


# incidents and handset fixes ------------------------------------------------------------
@panel("incidents")
def incidents(ctx: Context) -> list[dict[str, object]]:
    """Open hand-offs grouped by agency; the page counts the time since dispatch itself."""
    agencies: dict[str, dict[str, Any]] = {}
    for h in ctx.stored["handoffs"]:
        row = agencies.setdefault(h.agency_id, {
            "agency_id": h.agency_id, "agency_name": h.agency_name,
            "regency_code": h.regency_code, "alerts": 0, "handoffs": []})
        row["alerts"] += int(h.unacknowledged_alert)
        row["handoffs"].append({
            "incident_id": h.incident_id, "incident_type": h.incident_type,
            "priority": h.priority, "status": h.status,
            "dispatched_at": h.dispatched_at.timestamp(),
            "acknowledged_at": h.acknowledged_at.timestamp() if h.acknowledged_at else None,
            "alert": h.unacknowledged_alert})
    return list(agencies.values())


@panel("unmatched")
def unmatched_fixes(ctx: Context) -> list[dict[str, object]]:
    """Handset fixes no call has claimed (a caller may have been cut off), newest first."""
    desk = ctx.hub.handset
    if desk is None:
        return []
    return [{"id": f.id, "number": f.number, "lat": f.lat, "lon": f.lon,
             "accuracy_m": f.accuracy_m, "received_at": f.received_at, "sender": f.sender}
            for f in desk.unmatched()]


def hourly_chart(hub: Hub, config: Config) -> str:
    """Calls per hour today against the same weekday last week (all regencies), as SVG."""
    zone = local_zone(config)
    now = datetime.now(UTC)
    today = day_start(now, zone)
    week_ago = day_start(now - timedelta(days=7), zone)
    with Session(hub.engine) as session:
        this = tally.calls(session, today, today + timedelta(days=1))
        last = tally.calls(session, week_ago, week_ago + timedelta(days=1))

    def per_hour(rows: list[tally.CallRow]) -> list[float]:
        counts = [0.0] * 24
        for row in rows:
            counts[row.arrived_at.astimezone(zone).hour] += 1
        return counts

    return bars("Panggilan per jam / Calls per hour", [f"{h:02d}" for h in range(24)],
                [Series("hari ini / today", per_hour(this)),
                 Series("minggu lalu / last week", per_hour(last))])
