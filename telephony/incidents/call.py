"""What a call says about an incident, to prefill it: from the audit store's call row."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from telephony.audit.models import Call


@dataclass(frozen=True)
class CallFacts:
    """What the call says, to prefill an incident."""

    linkedid: str
    number: str
    regency_code: str
    emergency_type: str
    lat: float | None
    lon: float | None
    radius_m: float | None
    source: str


def call_facts(engine: Engine, linkedid: str) -> CallFacts | None:
    """The call as the audit store has it (live calls too: serve writes as they go)."""
    with Session(engine) as session:
        row = session.get(Call, linkedid)
        if row is None:
            return None
        return CallFacts(linkedid, row.caller or "", row.regency_code or "",
                         row.emergency_type or "", row.location_lat, row.location_lon,
                         row.location_radius_m, row.location_source or "")
