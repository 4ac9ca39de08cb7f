"""How the audit trail is shown: text tables and JSON (`calls`, `stats`, `test-call`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from enum import Enum

from telephony.audit.models import Call, CallLeg
from telephony.audit.report import CallDetail

# Payload fields worth a glance in a timeline; the rest is one `calls show --json` away.
_DETAIL_FIELDS = (
    "UserEvent", "EmergencyType", "Language", "Source", "RegencyCode", "Queue", "MemberName",
    "DestChannel", "DialStatus", "ChannelStateDesc", "Cause", "Cause-txt", "CELEventType",
)  # fmt: skip


def plain(value: object) -> object:
    """JSON-ready: times as ISO 8601 UTC, enums as their values, mapping keys as text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {_key(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _key(key: object) -> str:
    return f"{key:g}" if isinstance(key, float) else str(key)


def row(obj: Call | CallLeg) -> dict[str, object]:
    return {attr.key: getattr(obj, attr.key) for attr in obj.__mapper__.column_attrs}


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def seconds(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(header), *([str(c) for c in line] for line in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)  # fmt: skip


def detail_payload(detail: CallDetail) -> object:
    """One call as `calls show --json` prints it."""
    return plain({
        "call": row(detail.call),
        "legs": [row(leg) for leg in detail.legs],
        "events": [asdict(event) for event in detail.events],
    })


def detail_text(detail: CallDetail) -> str:
    """One call as `calls show` prints it."""
    c = detail.call
    location = "unknown"
    if c.location_source or c.regency_code:
        place = (
            f" at {c.location_lat:.5f},{c.location_lon:.5f}"
            if c.location_lat is not None and c.location_lon is not None
            else ""
        )
        radius = f" ±{c.location_radius_m:.0f} m" if c.location_radius_m is not None else ""
        cell = f", cell {c.cell_id}" if c.cell_id else ""
        location = f"{c.location_source or '-'}{place}{radius}{cell}; regency {c.regency_code}"
    flags = [name for name in ("overflowed", "transferred", "is_callback") if getattr(c, name)]
    facts = [
        ("caller", c.caller or "-"),
        ("arrived", when(c.arrived_at)),
        ("location", location),
        ("ivr choice", f"{c.emergency_type or '-'}, language {c.ivr_language or '-'}, "
                       f"done {when(c.ivr_done_at)}"),
        ("queue", f"{c.queue or '-'}, queued {when(c.queued_at)}, "
                  f"first ring {when(c.first_ring_at)}"),
        ("answered", f"{when(c.answered_at)} by {c.answering_operator or '-'} "
                     f"after {seconds(c.answer_seconds)} s"),
        ("ended", when(c.ended_at)),
        ("outcome", f"{c.outcome.value if c.outcome else c.phase}"
                    f"{' (' + ', '.join(flags) + ')' if flags else ''}"),
    ]  # fmt: skip
    lines = [f"call {c.linkedid}", *(f"  {name:<11} {value}" for name, value in facts), "legs"]
    legs = [
        (
            leg.uniqueid,
            leg.role.value,
            leg.endpoint or "-",
            when(leg.started_at),
            when(leg.answered_at),
            when(leg.ended_at),
            leg.hangup_cause if leg.hangup_cause is not None else "-",
            "yes" if leg.backfilled else "",
        )
        for leg in detail.legs
    ]
    header = ("UNIQUEID", "ROLE", "ENDPOINT", "STARTED", "ANSWERED", "ENDED", "CAUSE", "BACKFILLED")
    lines += ["  " + line for line in table(header, legs).splitlines()]
    lines.append("timeline")
    events = [
        (e.seq, when(e.time), e.type, e.uniqueid, e.source, summary(e.payload))
        for e in detail.events
    ]
    lines += [
        "  " + line
        for line in table(("SEQ", "TIME", "EVENT", "LEG", "SOURCE", "DETAIL"), events).splitlines()
    ]
    return "\n".join(lines)


def summary(payload: dict[str, object]) -> str:
    return " ".join(f"{k}={payload[k]}" for k in _DETAIL_FIELDS if payload.get(k))
