"""The incident desk as configured: agencies loaded, the service built, agency users' ties."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from telephony.config import Config, resolve_path
from telephony.incidents.agencies import AgencyError, load_agencies
from telephony.incidents.export import eido
from telephony.incidents.models import AgencyUser
from telephony.incidents.record import IncidentRecord
from telephony.incidents.service import Auditor, Incidents
from telephony.location.region import Regions


def open_desk(config: Config, engine: Engine, regions: Regions, audit: Auditor,
              on_change: Callable[[IncidentRecord], None] | None = None) -> Incidents:
    settings = config.incidents
    agencies = load_agencies(resolve_path(settings.agencies_file), regions,
                             settings.allow_plain_http)
    return Incidents(engine, regions, agencies, audit, link_distance_m=settings.link_distance_m,
                     link_window_s=settings.link_window_s, on_change=on_change)


def webhook_body(system_id: str) -> Callable[[IncidentRecord, str], str]:
    """The JSON an agency's webhook receives: the incident (EIDO names), as dispatched."""

    def body(incident: IncidentRecord, idempotency_key: str) -> str:
        document = eido(incident, system_id, "Report")
        document["idempotencyKey"] = idempotency_key
        return json.dumps(document, ensure_ascii=False, sort_keys=True)

    return body


def tie_agency_user(engine: Engine, name: str, agency_id: str, known: set[str]) -> None:
    if agency_id not in known:
        raise AgencyError(f"no agency {agency_id!r} in the agencies file")
    with Session(engine) as session, session.begin():
        session.merge(AgencyUser(name=name, agency_id=agency_id))


def agency_of(engine: Engine, name: str) -> str | None:
    with Session(engine) as session:
        row = session.get(AgencyUser, name)
        return row.agency_id if row is not None else None
