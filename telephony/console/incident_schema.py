"""The incident API's request and response models (pydantic), part of /api/openapi.json."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from telephony.incidents import STEPS, TYPES

IncidentType = Literal["police", "medical", "fire", "sar", "disaster", "other"]
Step = Literal["created", "dispatched", "acknowledged", "en-route", "on-scene", "closed"]
AgencyStep = Literal["acknowledged", "en-route", "on-scene", "closed"]
assert get_args(IncidentType) == TYPES and get_args(Step) == STEPS
LINKEDID = r"^[0-9A-Za-z._-]{1,150}$"
AGENCY = r"^[a-z0-9][a-z0-9_.-]{1,63}$"
REGENCY = r"^[0-9]{2}\.[0-9]{2}$"


def _no_controls(value: str | None) -> str | None:
    # Newlines and tabs are text; other control characters are not.
    if value is not None and any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127
                                 for c in value):
        raise ValueError("the text may not contain control characters")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateIncidentRequest(_Strict):
    linkedid: str = Field(pattern=LINKEDID)
    type: IncidentType | None = None
    note: str = Field(default="", max_length=1000)

    _note = field_validator("note")(_no_controls)


class LinkRequest(_Strict):
    linkedid: str = Field(pattern=LINKEDID)


class UpdateIncidentRequest(_Strict):
    type: IncidentType | None = None
    subtype: str | None = Field(default=None, max_length=64)
    priority: int | None = Field(default=None, ge=1, le=3)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=500)
    narrative: str | None = Field(default=None, max_length=4000)
    people: str | None = Field(default=None, max_length=1000)

    _texts = field_validator("subtype", "address", "narrative", "people")(_no_controls)


class NoteRequest(_Strict):
    text: str = Field(min_length=1, max_length=1000)

    _text = field_validator("text")(_no_controls)


class DispatchRequest(_Strict):
    agency_id: str = Field(pattern=AGENCY)


class ShareRequest(_Strict):
    regency_code: str = Field(pattern=REGENCY)


class StepRequest(_Strict):
    step: AgencyStep
    # Only a supervisor names the agency; an agency user acts for their own.
    agency_id: str | None = Field(default=None, pattern=AGENCY)


class HandoffView(BaseModel):
    agency_id: str
    agency_name: str
    status: Step
    dispatched_at: float
    dispatched_by: str
    delivered_at: float | None
    acknowledged_at: float | None
    en_route_at: float | None
    on_scene_at: float | None
    closed_at: float | None
    escalated_at: float | None


class TimelineView(BaseModel):
    at: float
    user: str
    kind: str
    agency_id: str
    regency_code: str
    text: str


class IncidentSummary(BaseModel):
    id: int
    type: IncidentType
    subtype: str
    priority: int
    status: Step
    regency_code: str
    shared_with: list[str]
    agencies: list[str]
    number: str
    address: str
    lat: float | None
    lon: float | None
    calls: int
    created_at: float
    updated_at: float


class IncidentDetail(IncidentSummary):
    caller_lat: float | None
    caller_lon: float | None
    caller_radius_m: float | None
    caller_source: str
    narrative: str
    people: str
    created_by: str
    linkedids: list[str]
    handoffs: list[HandoffView]
    timeline: list[TimelineView]


class Proposal(BaseModel):
    incident: IncidentSummary
    distance_m: float


class AgencyView(BaseModel):
    id: str
    name: str
    kind: str
    number: str
    regency_code: str
    ack_timeout_s: float
    webhook: bool


class Alert(BaseModel):
    """A hand-off not acknowledged within its agency's time: the escalation alert."""

    agency_id: str
    agency_name: str
    regency_code: str
    incident_id: int
    incident_type: str
    priority: int
    regencies: list[str]
    dispatched_at: float
    since_dispatch_s: float


class OpenHandoffView(BaseModel):
    agency_id: str
    agency_name: str
    regency_code: str
    incident_id: int
    incident_type: str
    priority: int
    status: Step
    dispatched_at: float
    since_dispatch_s: float
    acknowledged_at: float | None
    unacknowledged_alert: bool
