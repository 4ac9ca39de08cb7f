"""Counts from the audit store that the wallboard and the reports share: the calls of a
window, the console's classifications (prank, ghost, ...) and who heard a major message.

Classifications and messages live in the chain as UserEvents (ConsoleAction, MessagePlayed):
they are read from ``audit_events`` and decoded here, in one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from telephony.audit.models import AuditEvent, Call
from telephony.contract import UserEvent

# The console's audit UserEvent and its classify operation (telephony.console.words).
CONSOLE_ACTION = "ConsoleAction"
CLASSIFY = "classify"


@dataclass(frozen=True)
class CallRow:
    linkedid: str
    arrived_at: datetime
    regency_code: str | None
    lat: float | None
    lon: float | None
    emergency_type: str | None
    outcome: str | None
    answer_seconds: float | None
    is_callback: bool


def calls(session: Session, since: datetime, until: datetime,
          regency_code: str | None = None) -> list[CallRow]:
    query = select(Call.linkedid, Call.arrived_at, Call.regency_code, Call.location_lat,
                   Call.location_lon, Call.emergency_type, Call.outcome, Call.answer_seconds,
                   Call.is_callback).where(Call.arrived_at >= since, Call.arrived_at < until)
    if regency_code is not None:
        query = query.where(Call.regency_code == regency_code)
    return [CallRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6].value if r[6] else None, r[7],
                    bool(r[8])) for r in session.execute(query.order_by(Call.arrived_at))]


def _user_events(session: Session, since: datetime, until: datetime | None,
                 name: str) -> Iterable[tuple[str, dict[str, object]]]:
    query = select(AuditEvent.linkedid, AuditEvent.payload).where(
        AuditEvent.type == "UserEvent", AuditEvent.time >= since,
        AuditEvent.payload.contains(f'"{name}"'))
    if until is not None:
        query = query.where(AuditEvent.time < until)
    for linkedid, payload in session.execute(query.order_by(AuditEvent.seq)):
        try:
            fields = json.loads(payload)
        except ValueError:
            continue
        if isinstance(fields, dict) and fields.get("UserEvent") == name:
            yield linkedid, fields


def classifications(session: Session, since: datetime,
                    until: datetime | None = None) -> dict[str, str]:
    """The latest category each call was classified as, by linkedid."""
    found: dict[str, str] = {}
    for linkedid, fields in _user_events(session, since, until, CONSOLE_ACTION):
        if fields.get("Operation") == CLASSIFY and isinstance(fields.get("Category"), str):
            found[str(fields.get("Linkedid") or linkedid)] = str(fields["Category"])
    return found


def heard(session: Session, since: datetime, until: datetime | None = None) -> dict[str, str]:
    """The major message (its id) each call heard, by linkedid."""
    return {linkedid: str(fields.get("MessageId", ""))
            for linkedid, fields in _user_events(session, since, until,
                                                 UserEvent.MESSAGE_PLAYED)}
