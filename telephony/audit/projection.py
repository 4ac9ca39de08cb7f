"""Call and leg projections from AMI events (pure): ``apply(event, at, call, legs) -> Change``.

The dialplan reports what only it knows through ``UserEvent``s:

* ``UserEvent: IVRChoice`` with ``EmergencyType`` (ends the IVR) and/or ``Language``;
* ``UserEvent: IVRLocation`` with ``Source``, ``Lat``, ``Lon``, ``Radius`` (metres), ``CellId``,
  ``RegencyCode`` and ``CallerE164`` (the normalised number, which replaces Newchannel's raw one).

A leg's role can be forced with the channel variable ``CALLROLE`` (e.g. ``callback`` on an
originated callback) when manager.conf has ``channelvars = CALLROLE``; otherwise the channel
that started the call is the caller, queue and dial targets are operators, and targets dialled
after a transfer are transfer targets.

Overflow: a caller who left a queue unanswered (timeout, not abandon) and is then queued again
or dialled elsewhere has overflowed; if someone answers after that the outcome is
``overflowed-then-answered``.

QueueCallerAbandon, AgentComplete, AgentRingNoAnswer and BridgeEnter/BridgeLeave are kept in
the audit trail but change no projection: the outcome follows from the events above.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from telephony.ami.frames import Frame
from telephony.ami.identity import INJECTED_FIELD
from telephony.audit.events import event_linkedid
from telephony.contract import CHANNEL_STATE_UP, UserEvent

# Q.850 causes that mean someone simply hung up; anything else on an unanswered call is a
# failure of the network or of our system, not a caller giving up.
NORMAL_CAUSES = frozenset({0, 16, 31})


class Outcome(StrEnum):
    ANSWERED = "answered"
    ABANDONED_IN_IVR = "abandoned-in-ivr"
    ABANDONED_IN_QUEUE = "abandoned-in-queue"
    OVERFLOWED_THEN_ANSWERED = "overflowed-then-answered"
    FAILED = "failed"


class LegRole(StrEnum):
    CALLER = "caller"
    OPERATOR = "operator"
    CALLBACK = "callback"
    TRANSFER_TARGET = "transfer-target"
    OTHER = "other"


class Phase(StrEnum):
    IVR = "ivr"
    QUEUED = "queued"
    LEFT_QUEUE = "left-queue"
    CONNECTED = "connected"
    ENDED = "ended"


@dataclass(frozen=True)
class CallState:
    """Mirrors the ``calls`` table column for column."""

    linkedid: str
    arrived_at: datetime
    caller: str | None = None
    location_source: str | None = None
    location_lat: float | None = None
    location_lon: float | None = None
    location_radius_m: float | None = None
    cell_id: str | None = None
    regency_code: str | None = None
    emergency_type: str | None = None
    ivr_language: str | None = None
    ivr_done_at: datetime | None = None
    queued_at: datetime | None = None
    first_ring_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    recording_started_at: datetime | None = None
    queue: str | None = None
    phase: Phase = Phase.IVR
    overflowed: bool = False
    transferred: bool = False
    is_callback: bool = False
    outcome: Outcome | None = None
    answering_operator: str | None = None
    answer_seconds: float | None = None
    injected: bool = False


@dataclass(frozen=True)
class LegState:
    """Mirrors the ``call_legs`` table column for column."""

    uniqueid: str
    linkedid: str
    channel: str | None = None
    role: LegRole = LegRole.OTHER
    endpoint: str | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None
    dial_status: str | None = None
    backfilled: bool = False


@dataclass(frozen=True)
class Change:
    """The call (None if untouched) and the legs an event changed."""

    call: CallState | None
    legs: tuple[LegState, ...] = ()


def endpoint_of(channel: str) -> str:
    """Drop the channel's sequence suffix: ``PJSIP/op-1001-0000002a`` -> ``PJSIP/op-1001``."""
    name = channel.split(";", 1)[0]
    head, sep, suffix = name.rpartition("-")
    is_sequence = len(suffix) == 8 and all(c in "0123456789abcdef" for c in suffix)
    return head if sep and is_sequence else name


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def outcome_of(call: CallState, cause: int | None) -> Outcome:
    if call.answered_at is not None:
        return Outcome.OVERFLOWED_THEN_ANSWERED if call.overflowed else Outcome.ANSWERED
    if cause is not None and cause not in NORMAL_CAUSES:
        return Outcome.FAILED
    return Outcome.ABANDONED_IN_QUEUE if call.queued_at is not None else Outcome.ABANDONED_IN_IVR


class _Work:
    """Copy-on-write view of one call and its legs while one event is applied."""

    def __init__(self, call: CallState, legs: Mapping[str, LegState]) -> None:
        self.call = call
        self._legs = legs
        self.changed: dict[str, LegState] = {}

    def set_call(self, **changes: object) -> None:
        self.call = dataclasses.replace(self.call, **changes)  # type: ignore[arg-type]

    def leg(self, uniqueid: str) -> LegState:
        found = self.changed.get(uniqueid) or self._legs.get(uniqueid)
        return found or LegState(uniqueid=uniqueid, linkedid=self.call.linkedid)

    def set_leg(self, uniqueid: str, **changes: object) -> None:
        if uniqueid:
            self.changed[uniqueid] = dataclasses.replace(self.leg(uniqueid), **changes)  # type: ignore[arg-type]

    def answered(self, at: datetime, operator: str | None) -> None:
        if self.call.answered_at is None:
            seconds = (at - self.call.arrived_at).total_seconds()
            self.set_call(answered_at=at, answering_operator=operator, answer_seconds=seconds)
        self.set_call(phase=Phase.CONNECTED)


def apply(
    event: Frame, at: datetime, call: CallState | None, legs: Mapping[str, LegState]
) -> Change:
    """Project one event onto its call; ``legs`` are the call's known legs by uniqueid."""
    linkedid = event_linkedid(event)
    if not linkedid:
        return Change(None)
    work = _Work(call or CallState(linkedid=linkedid, arrived_at=at), legs)
    name = event.event or ""
    handler = _HANDLERS.get(name)
    if handler is not None:
        handler(work, event, at)
    _apply_role_variable(work, event)
    if INJECTED_FIELD in event and not work.call.injected:
        work.set_call(injected=True)
    changed_call = work.call if call is None or work.call != call else None
    changed_legs = tuple(leg for uid, leg in work.changed.items() if legs.get(uid) != leg)
    return Change(changed_call, changed_legs)


def _apply_role_variable(work: _Work, event: Frame) -> None:
    for assignment in event.get_all("ChanVariable"):
        variable, _, value = assignment.partition("=")
        uniqueid = event.get("Uniqueid") or ""
        if variable == "CALLROLE" and value in set(LegRole):
            work.set_leg(uniqueid, role=LegRole(value))
            if uniqueid == work.call.linkedid and value == LegRole.CALLBACK:
                work.set_call(is_callback=True)


def _newchannel(work: _Work, event: Frame, at: datetime) -> None:
    uniqueid = event.get("Uniqueid") or ""
    channel = event.get("Channel") or ""
    is_origin = uniqueid == work.call.linkedid
    role = LegRole.CALLER if is_origin else work.leg(uniqueid).role
    work.set_leg(uniqueid, channel=channel, endpoint=endpoint_of(channel), started_at=at, role=role)
    if is_origin:
        work.set_call(arrived_at=at, caller=event.get("CallerIDNum") or None)


def _newstate(work: _Work, event: Frame, at: datetime) -> None:
    uniqueid = event.get("Uniqueid") or ""
    if event.get("ChannelState") == CHANNEL_STATE_UP and work.leg(uniqueid).answered_at is None:
        work.set_leg(uniqueid, answered_at=at)


def _dial_target(work: _Work, event: Frame, role: LegRole) -> None:
    uniqueid = event.get("DestUniqueid") or ""
    channel = event.get("DestChannel") or ""
    if uniqueid and channel:
        current = work.leg(uniqueid).role
        keep = current in (LegRole.CALLBACK, LegRole.TRANSFER_TARGET)
        work.set_leg(
            uniqueid, channel=channel, endpoint=endpoint_of(channel), role=current if keep else role
        )


def _ringing(work: _Work, at: datetime) -> None:
    if work.call.first_ring_at is None:
        work.set_call(first_ring_at=at)


def _dial_begin(work: _Work, event: Frame, at: datetime) -> None:
    role = LegRole.TRANSFER_TARGET if work.call.transferred else LegRole.OPERATOR
    _dial_target(work, event, role)
    if event.get("Uniqueid") == work.call.linkedid:
        _ringing(work, at)
        if work.call.phase == Phase.LEFT_QUEUE:
            work.set_call(overflowed=True)


def _dial_end(work: _Work, event: Frame, at: datetime) -> None:
    status = event.get("DialStatus")
    work.set_leg(event.get("DestUniqueid") or "", dial_status=status)
    direct = event.get("Uniqueid") == work.call.linkedid and work.call.phase != Phase.QUEUED
    if status == "ANSWER" and direct:
        work.answered(at, endpoint_of(event.get("DestChannel") or "") or None)


def _agent_called(work: _Work, event: Frame, at: datetime) -> None:
    _dial_target(work, event, LegRole.OPERATOR)
    _ringing(work, at)


def _agent_connect(work: _Work, event: Frame, at: datetime) -> None:
    _dial_target(work, event, LegRole.OPERATOR)
    work.answered(at, event.get("MemberName") or event.get("Interface"))


def _queue_join(work: _Work, event: Frame, at: datetime) -> None:
    if work.call.phase == Phase.LEFT_QUEUE:
        work.set_call(overflowed=True)
    work.set_call(queued_at=work.call.queued_at or at, queue=event.get("Queue"), phase=Phase.QUEUED)


def _queue_leave(work: _Work, event: Frame, at: datetime) -> None:
    if work.call.phase == Phase.QUEUED:
        work.set_call(phase=Phase.LEFT_QUEUE)


def _transfer(work: _Work, event: Frame, at: datetime) -> None:
    work.set_call(transferred=True)
    target = event.get("TransferTargetUniqueid")
    if target:
        work.set_leg(target, role=LegRole.TRANSFER_TARGET)


def _hangup(work: _Work, event: Frame, at: datetime) -> None:
    uniqueid = event.get("Uniqueid") or ""
    cause = _int(event.get("Cause"))
    work.set_leg(
        uniqueid, ended_at=at, hangup_cause=cause, hangup_cause_text=event.get("Cause-txt")
    )
    if uniqueid == work.call.linkedid and work.call.ended_at is None:
        work.set_call(ended_at=at, phase=Phase.ENDED, outcome=outcome_of(work.call, cause))


def _user_event(work: _Work, event: Frame, at: datetime) -> None:
    kind = event.get("UserEvent")
    if kind == UserEvent.IVR_CHOICE:
        emergency = event.get("EmergencyType")
        if emergency:
            work.set_call(emergency_type=emergency, ivr_done_at=work.call.ivr_done_at or at)
        language = event.get("Language")
        if language:
            work.set_call(ivr_language=language)
    elif kind == UserEvent.IVR_LOCATION:
        work.set_call(
            caller=event.get("CallerE164") or work.call.caller,
            location_source=event.get("Source"),
            location_lat=_float(event.get("Lat")),
            location_lon=_float(event.get("Lon")),
            location_radius_m=_float(event.get("Radius")),
            cell_id=event.get("CellId"),
            regency_code=event.get("RegencyCode"),
        )


def _recording(work: _Work, event: Frame, at: datetime) -> None:
    if work.call.recording_started_at is None:
        work.set_call(recording_started_at=at)


_HANDLERS = {
    "Newchannel": _newchannel,
    "Newstate": _newstate,
    "DialBegin": _dial_begin,
    "DialEnd": _dial_end,
    "AgentCalled": _agent_called,
    "AgentConnect": _agent_connect,
    "QueueCallerJoin": _queue_join,
    "QueueCallerLeave": _queue_leave,
    "BlindTransfer": _transfer,
    "AttendedTransfer": _transfer,
    "Hangup": _hangup,
    "UserEvent": _user_event,
    "MixMonitorStart": _recording,
}
