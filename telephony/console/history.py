"""What the audit store says about a caller: their last 30 days, classifications, callbacks.

Classifications and callback outcomes live only in the audit chain (``UserEvent:
ConsoleAction`` rows that serve's writer recorded): the chain is the single record of who
decided what, and nothing here can be edited without breaking it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from telephony.audit import AuditEvent, Call
from telephony.callbacks.items import CallbackItem
from telephony.console.board import Hop, LiveCall, decode_note
from telephony.console.schema import Classification, HistoryEntry, Nuisance
from telephony.console.words import AUDIT_EVENT, NUISANCE

HISTORY_DAYS = 30
HISTORY_LIMIT = 50


def _console_actions(session: Session, linkedids: list[str]) -> list[dict[str, Any]]:
    """Console actions recorded for these calls, oldest first."""
    if not linkedids:
        return []
    rows = session.execute(
        select(AuditEvent.linkedid, AuditEvent.payload)
        .where(AuditEvent.linkedid.in_(linkedids), AuditEvent.type == "UserEvent",
               AuditEvent.payload.contains(AUDIT_EVENT))
        .order_by(AuditEvent.seq)
    )
    found = []
    for linkedid, payload in rows:
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("UserEvent") == AUDIT_EVENT:
            found.append({**data, "Linkedid": linkedid})
    return found


def classification_of(action: dict[str, Any]) -> Classification:
    return Classification(category=str(action.get("Category", "")),
                          note=decode_note(str(action.get("Note", ""))),
                          by=str(action.get("User", "")))


def caller_history(engine: Engine, number: str, exclude: str,
                   now: datetime | None = None) -> tuple[list[HistoryEntry], Nuisance]:
    now = now or datetime.now(UTC)
    with Session(engine) as session:
        calls = session.scalars(
            select(Call).where(Call.caller == number, Call.linkedid != exclude,
                               Call.arrived_at >= now - timedelta(days=HISTORY_DAYS))
            .order_by(Call.arrived_at.desc()).limit(HISTORY_LIMIT)
        ).all()
        ids = [c.linkedid for c in calls]
        actions = _console_actions(session, ids)
        items = session.scalars(select(CallbackItem).where(CallbackItem.caller == number)).all()
        entries_by_call: dict[str, list[str]] = {}
        for item in items:
            text = f"#{item.id} {item.status}" + (f" ({item.taken_by})" if item.taken_by else "")
            entries_by_call.setdefault(item.last_linkedid, []).append(text)
        classified: dict[str, Classification] = {}
        for action in actions:
            if action.get("Operation") == "classify":
                classified[action["Linkedid"]] = classification_of(action)
            elif action.get("Operation") == "callback-done":
                entries_by_call.setdefault(action["Linkedid"], []).append(
                    f"#{action.get('CallbackId', '')} {action.get('Outcome', '')}")
        history = [
            HistoryEntry(
                linkedid=c.linkedid, arrived_at=c.arrived_at.timestamp(),
                outcome=c.outcome.value if c.outcome else None,
                emergency_type=c.emergency_type, classification=classified.get(c.linkedid),
                callbacks=entries_by_call.get(c.linkedid, []),
            )
            for c in calls
        ]
    counts = {name: sum(1 for h in history if h.classification
                        and h.classification.category == name) for name in NUISANCE}
    return history, Nuisance(prank=counts["prank"], ghost=counts["ghost"])


def recent_calls(engine: Engine, hours: float = 2.0) -> list[LiveCall]:
    """Calls of the last hours from the audit store: how the board recovers after a gap."""
    since = datetime.now(UTC) - timedelta(hours=hours)
    with Session(engine) as session:
        rows = session.scalars(select(Call).where(Call.arrived_at >= since)
                               .order_by(Call.arrived_at)).all()
        return [
            LiveCall(
                linkedid=c.linkedid, arrived_at=c.arrived_at.timestamp(),
                raw_number=c.caller or "", number=c.caller or "",
                emergency_type=c.emergency_type or "", language=c.ivr_language or "",
                location_source=c.location_source or "", lat=c.location_lat,
                lon=c.location_lon, radius_m=c.location_radius_m, cell_id=c.cell_id or "",
                regency_code=c.regency_code or "", answered_by=c.answering_operator or "",
                ended_at=c.ended_at.timestamp() if c.ended_at else None,
                hops=[Hop(c.queue, c.arrived_at.timestamp(), "queued")] if c.queue else [],
            )
            for c in rows if not c.is_callback
        ]
