"""Incidents: many calls, one incident; hand-off to agencies; regencies working together.

See docs/incidents.md. ``Incidents`` (service.py) is the one code path for the console's
API and the CLI; ``Incidents.open_by_agency`` is what a wallboard reads.
"""

from __future__ import annotations

from telephony.incidents.agencies import Agency, AgencyError, load_agencies
from telephony.incidents.call import CallFacts, call_facts
from telephony.incidents.desk import agency_of, open_desk, tie_agency_user, webhook_body
from telephony.incidents.export import eido, pidf_lo
from telephony.incidents.record import STEPS, TYPES, IncidentRecord, OpenHandoff
from telephony.incidents.service import IncidentError, Incidents

__all__ = [
    "STEPS",
    "TYPES",
    "Agency",
    "AgencyError",
    "CallFacts",
    "IncidentError",
    "IncidentRecord",
    "Incidents",
    "OpenHandoff",
    "agency_of",
    "call_facts",
    "eido",
    "load_agencies",
    "open_desk",
    "pidf_lo",
    "tie_agency_user",
    "webhook_body",
]
