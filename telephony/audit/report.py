"""Read-side queries for ``calls list``, ``calls show`` and ``stats``.

Answer time runs from arrival at our switch (IVR included) to the answer. Service levels are
shares of all finished calls offered in the window, answered or not, against NENA's targets of
90 % answered within 15 s and 95 % within 20 s; callbacks we originated are not offered calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from telephony.audit.models import AuditEvent, Call, CallLeg
from telephony.audit.projection import Outcome
from telephony.percentile import nearest_rank

NENA_TARGETS = ((15.0, 0.90), (20.0, 0.95))
SERVICE_LEVEL_SECONDS = (10.0, 15.0, 20.0)
_ANSWERED = (Outcome.ANSWERED, Outcome.OVERFLOWED_THEN_ANSWERED)
_ABANDONED = (Outcome.ABANDONED_IN_IVR, Outcome.ABANDONED_IN_QUEUE)


@dataclass(frozen=True)
class EventView:
    seq: int
    time: datetime
    type: str
    uniqueid: str
    source: str
    payload: dict[str, object]


@dataclass(frozen=True)
class CallDetail:
    call: Call
    legs: list[CallLeg]
    events: list[EventView]


@dataclass(frozen=True)
class RegencyStats:
    """One regency (``None``: location unknown) or, in ``StatsReport.total``, everything."""

    regency_code: str | None
    offered: int
    answered: int
    abandoned: int
    failed: int
    answer_p50_s: float | None
    answer_p90_s: float | None
    answer_p95_s: float | None
    within_s: dict[float, float]
    """Share of offered calls answered within each of ``SERVICE_LEVEL_SECONDS``."""
    meets_nena: bool


@dataclass(frozen=True)
class StatsReport:
    since: datetime | None
    until: datetime | None
    total: RegencyStats
    regencies: list[RegencyStats]


def _window(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if since is not None:
        clauses.append(Call.arrived_at >= since)
    if until is not None:
        clauses.append(Call.arrived_at < until)
    return clauses


def list_calls(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    regency_code: str | None = None,
    outcome: Outcome | None = None,
    limit: int = 100,
) -> list[Call]:
    """Newest first."""
    query = select(Call).where(*_window(since, until))
    if regency_code is not None:
        query = query.where(Call.regency_code == regency_code)
    if outcome is not None:
        query = query.where(Call.outcome == outcome)
    return list(session.scalars(query.order_by(Call.arrived_at.desc()).limit(limit)))


def show_call(session: Session, linkedid: str) -> CallDetail | None:
    call = session.get(Call, linkedid)
    if call is None:
        return None
    legs = session.scalars(
        select(CallLeg).where(CallLeg.linkedid == linkedid).order_by(CallLeg.started_at)
    )
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.linkedid == linkedid).order_by(AuditEvent.seq)
    )
    views = [
        EventView(e.seq, e.time, e.type, e.uniqueid, e.source, json.loads(e.payload))
        for e in events
    ]
    return CallDetail(call, list(legs), views)


def stats(
    session: Session, *, since: datetime | None = None, until: datetime | None = None
) -> StatsReport:
    query = select(Call.regency_code, Call.outcome, Call.answer_seconds).where(
        *_window(since, until), Call.outcome.is_not(None), Call.is_callback.is_(False)
    )
    calls = [(regency, outcome, seconds) for regency, outcome, seconds in session.execute(query)]
    by_regency: dict[str | None, list[tuple[Outcome | None, float | None]]] = {}
    for regency, outcome, seconds in calls:
        by_regency.setdefault(regency, []).append((outcome, seconds))
    regencies = [
        summarize(code, by_regency[code])
        for code in sorted(by_regency, key=lambda c: (c is None, c or ""))
    ]
    total = summarize(None, [(outcome, seconds) for _, outcome, seconds in calls])
    return StatsReport(since, until, total, regencies)


def summarize(
    regency_code: str | None, calls: Iterable[tuple[Outcome | None, float | None]]
) -> RegencyStats:
    outcomes: list[Outcome | None] = []
    answer_times: list[float] = []
    for outcome, seconds in calls:
        outcomes.append(outcome)
        if outcome in _ANSWERED and seconds is not None:
            answer_times.append(seconds)
    answer_times.sort()
    offered = len(outcomes)
    within = {
        limit: (sum(1 for s in answer_times if s <= limit) / offered if offered else 0.0)
        for limit in SERVICE_LEVEL_SECONDS
    }
    return RegencyStats(
        regency_code=regency_code,
        offered=offered,
        answered=sum(1 for o in outcomes if o in _ANSWERED),
        abandoned=sum(1 for o in outcomes if o in _ABANDONED),
        failed=sum(1 for o in outcomes if o is Outcome.FAILED),
        answer_p50_s=nearest_rank(answer_times, 0.50),
        answer_p90_s=nearest_rank(answer_times, 0.90),
        answer_p95_s=nearest_rank(answer_times, 0.95),
        within_s=within,
        meets_nena=offered > 0 and all(within[s] >= target for s, target in NENA_TARGETS),
    )
