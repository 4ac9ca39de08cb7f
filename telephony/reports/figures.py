"""What a report holds, computed from the audit store, as a registry of sections.

``build(engine, config, regency, first_day, last_day)`` runs every section of ``SECTIONS``
over the calls that arrived in the regency between the local midnights (``console.timezone``)
that bound the days. A section is a function of a :class:`Window`; ``section(name)``
registers one. Built in: ``calls`` (by type and outcome), ``answer_times`` (the distribution),
``nuisance`` (the console's classifications) and ``incidents`` (hand-offs by agency, with the
hand-off and acknowledgement times). Each has its CSV rows in telephony/reports/formats.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from telephony.audit import tally
from telephony.audit.projection import Outcome
from telephony.audit.report import NENA_TARGETS, summarize
from telephony.config import Config
from telephony.incidents.models import Handoff, Incident, IncidentShare
from telephony.percentile import nearest_rank

# Answer-time buckets, seconds from arrival at our switch: upper bounds, inclusive.
BUCKETS = (5.0, 10.0, 15.0, 20.0, 30.0, 60.0)
NUISANCE = ("prank", "ghost")


@dataclass(frozen=True)
class Window:
    session: Session
    regency_code: str
    since: datetime
    until: datetime
    calls: list[tally.CallRow]


Section = Callable[[Window], dict[str, object]]
SECTIONS: dict[str, Section] = {}


def section(name: str) -> Callable[[Section], Section]:
    def register(fn: Section) -> Section:
        SECTIONS[name] = fn
        return fn
    return register


def bounds(first_day: date, last_day: date, zone: str) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    since = datetime.combine(first_day, time(), tz).astimezone(UTC)
    until = datetime.combine(last_day + timedelta(days=1), time(), tz).astimezone(UTC)
    return since, until


def build(engine: Engine, config: Config, regency_code: str, first_day: date,
          last_day: date) -> dict[str, object]:
    since, until = bounds(first_day, last_day, config.console.timezone)
    with Session(engine) as session:
        calls = [c for c in tally.calls(session, since, until, regency_code)
                 if not c.is_callback]
        window = Window(session, regency_code, since, until, calls)
        sections = {name: fn(window) for name, fn in SECTIONS.items()}
    return {"regency_code": regency_code, "from": first_day.isoformat(),
            "to": last_day.isoformat(), "timezone": config.console.timezone,
            "since_utc": since.isoformat(), "until_utc": until.isoformat(),
            "offered": len(calls), "sections": sections}


@section("calls")
def calls_by_type(window: Window) -> dict[str, object]:
    counts = Counter((c.emergency_type or "unknown", c.outcome or "in-progress")
                     for c in window.calls)
    return {"rows": [{"emergency_type": t, "outcome": o, "calls": n}
                     for (t, o), n in sorted(counts.items())]}


@section("answer_times")
def answer_times(window: Window) -> dict[str, object]:
    answered = sorted(c.answer_seconds for c in window.calls
                      if c.outcome in (Outcome.ANSWERED.value,
                                       Outcome.OVERFLOWED_THEN_ANSWERED.value)
                      and c.answer_seconds is not None)
    offered = len(window.calls)
    rows = []
    edges = (0.0, *BUCKETS)
    for index, high in enumerate((*BUCKETS, None)):
        low = edges[index]
        inside = [s for s in answered
                  if (index == 0 or s > low) and (high is None or s <= high)]
        label = f"{low:g}-{high:g} s" if high is not None else f"over {low:g} s"
        rows.append({"bucket": label, "calls": len(inside),
                     "share_of_offered": round(len(inside) / offered, 4) if offered else 0.0})
    stats = summarize(window.regency_code, [(Outcome(c.outcome), c.answer_seconds)
                                            for c in window.calls if c.outcome])
    return {"rows": rows, "answered": len(answered), "p50_s": stats.answer_p50_s,
            "p90_s": stats.answer_p90_s, "p95_s": stats.answer_p95_s,
            "service_levels": [{"within_s": s, "share": round(stats.within_s[s], 4),
                                "target": t, "met": stats.within_s[s] >= t}
                               for s, t in NENA_TARGETS]}


@section("nuisance")
def nuisance(window: Window) -> dict[str, object]:
    ids = {c.linkedid for c in window.calls}
    classified = {k: v for k, v in tally.classifications(window.session, window.since,
                                                         window.until).items() if k in ids}
    counts = Counter(classified.values())
    offered = len(window.calls)
    return {"classified": len(classified),
            "rows": [{"category": k, "calls": n,
                      "share_of_offered": round(n / offered, 4) if offered else 0.0,
                      "nuisance": k in NUISANCE} for k, n in sorted(counts.items())],
            "nuisance_share": round(sum(counts[k] for k in NUISANCE) / offered, 4)
            if offered else 0.0}


def _times(seconds: list[float]) -> dict[str, object]:
    ordered = sorted(seconds)
    return {"count": len(ordered), "median_s": nearest_rank(ordered, 0.5),
            "p90_s": nearest_rank(ordered, 0.9)}


@section("incidents")
def incidents_by_agency(window: Window) -> dict[str, object]:
    """Hand-offs dispatched in the window, of incidents the regency created or was shared,
    by agency: the hand-off time (incident created to dispatched) and the acknowledgement
    time (dispatched to acknowledged), and how many are unacknowledged or were escalated."""
    shared = select(IncidentShare.incident_id).where(
        IncidentShare.regency_code == window.regency_code)
    rows = window.session.execute(select(Handoff, Incident.created_at).join(
        Incident, Incident.id == Handoff.incident_id).where(
        or_(Incident.regency_code == window.regency_code, Incident.id.in_(shared)),
        Handoff.dispatched_at >= window.since, Handoff.dispatched_at < window.until)).all()
    agencies: dict[str, list[tuple[Handoff, datetime]]] = {}
    for handoff, created_at in rows:
        agencies.setdefault(handoff.agency_id, []).append((handoff, created_at))
    result = []
    for agency_id, handoffs in sorted(agencies.items()):
        acked = [h for h, _ in handoffs if h.acknowledged_at is not None]
        result.append({
            "agency_id": agency_id, "handoffs": len(handoffs),
            "incidents": len({h.incident_id for h, _ in handoffs}),
            "handoff": _times([(h.dispatched_at - c).total_seconds() for h, c in handoffs]),
            "acknowledgement": _times([(h.acknowledged_at - h.dispatched_at).total_seconds()
                                       for h in acked if h.acknowledged_at is not None]),
            "unacknowledged": len(handoffs) - len(acked),
            "escalated": sum(1 for h, _ in handoffs if h.escalated_at is not None)})
    return {"rows": result}
