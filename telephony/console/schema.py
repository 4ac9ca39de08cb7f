"""The console API's request and response models (pydantic): what /api/openapi.json shows."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from telephony.console.incident_schema import Alert, IncidentSummary
from telephony.console.words import CALLBACK_OUTCOMES, CATEGORIES, NOTE_MAX, PRESENCE_STATES
from telephony.operators.presence import PAUSE_REASONS

Category = Literal["emergency", "information", "prank", "ghost", "wrong-number", "test"]
PauseReason = Literal["break", "wrap-up", "training", "other"]
CallbackOutcome = Literal["reached", "no-answer", "not-needed", "wrong-number"]
PresenceState = Literal["available", "paused", "logged-out"]
# The literals above spell out words.py's tables for the OpenAPI schema; they must agree.
assert get_args(Category) == CATEGORIES and get_args(PauseReason) == PAUSE_REASONS
assert get_args(CallbackOutcome) == CALLBACK_OUTCOMES
assert get_args(PresenceState) == PRESENCE_STATES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Strict):
    name: str = Field(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]{1,63}$")
    password: str = Field(min_length=1, max_length=256)


class ClassifyRequest(_Strict):
    category: Category
    note: str = Field(default="", max_length=NOTE_MAX)

    @field_validator("note")
    @classmethod
    def _printable(cls, value: str) -> str:
        # Newlines and tabs are text; other control characters are not.
        if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in value):
            raise ValueError("the note may not contain control characters")
        return value


class HandoverRequest(_Strict):
    regency_code: str = Field(pattern=r"^[0-9]{2}\.[0-9]{2}$")


class PresenceRequest(_Strict):
    state: PresenceState
    reason: PauseReason | None = None


class CallbackDoneRequest(_Strict):
    outcome: CallbackOutcome


class Location(BaseModel):
    lat: float
    lon: float
    radius_m: float | None
    source: str
    kind: Literal["handset", "network"]
    cell_id: str


class HandsetFix(BaseModel):
    """The caller's own fix (AML/ELS), shown beside the network location, never instead."""

    id: int
    lat: float
    lon: float
    accuracy_m: float
    fixed_at: float
    received_at: float
    method: str
    transport: str
    sender: str
    number: str = ""
    routed_to: str = ""


class Hop(BaseModel):
    queue: str
    at: float
    reason: str


class Classification(BaseModel):
    category: str
    note: str
    by: str


class HistoryEntry(BaseModel):
    linkedid: str
    arrived_at: float
    outcome: str | None
    emergency_type: str | None
    classification: Classification | None
    callbacks: list[str]


class Nuisance(BaseModel):
    prank: int
    ghost: int


class Card(BaseModel):
    linkedid: str
    arrived_at: float
    phase: str
    number: str
    number_kind: Literal["e164", "withheld", "none", "raw"]
    emergency_type: str
    language: str
    regency_code: str
    regency_name: str
    method: str
    confidence: str
    location: Location | None
    hops: list[Hop]
    ringing: list[str]
    offered: list[str]
    answered_by: str
    ended_at: float | None
    classification: Classification | None
    history: list[HistoryEntry] | None
    nuisance: Nuisance | None
    handset: HandsetFix | None = None


class Status(BaseModel):
    database: bool
    ami: bool


class Presence(BaseModel):
    operator_id: str
    state: PresenceState
    reason: str | None


class LiveEvent(BaseModel):
    seq: int
    kind: Literal["call", "status", "presence", "incident", "alert"]
    call: Card | None = None
    status: Status | None = None
    presence: Presence | None = None
    incident: IncidentSummary | None = None
    alert: Alert | None = None


class Snapshot(BaseModel):
    """What a WebSocket client gets first: the state, then every event after ``since``."""

    epoch: str
    seq: int
    calls: list[Card]
    status: Status
    missed: list[LiveEvent]
    complete: bool


class Me(BaseModel):
    name: str
    role: Literal["operator", "supervisor", "agency"]
    operator_id: str | None
    regency_code: str | None
    regency_name: str | None
    presence: Presence | None
    csrf_token: str
    agency_id: str | None = None


class CallbackItem(BaseModel):
    id: int
    caller: str
    status: str
    attempts: int
    emergency_type: str | None
    regency_code: str | None
    waited_s: float
    created_at: str
    taken_by: str | None


class Done(BaseModel):
    ok: bool = True
    detail: str = ""


class RegencyPoint(BaseModel):
    code: str
    name: str
    point: str
    lat: float
    lon: float
    launch: bool
