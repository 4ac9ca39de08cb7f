"""The console's live picture of calls in progress, built from AMI events (pure).

``Board.apply(frame)`` folds one event into the calls it knows and returns the linkedids
whose card changed. It runs on the console's own worker thread, never on the AMI reader.
What the dialplan and the IVR know arrives as UserEvents (IVRChoice, IVRLocation,
CallQueued, QueueOverflow, Handover, ConsoleAction); queue ringing as AgentCalled, answers as
AgentConnect, the end as the caller channel's Hangup.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from telephony.ami.frames import Frame
from telephony.audit.events import event_linkedid

# Ended calls kept for the recent-calls list.
RECENT_CALLS = 50
# Values the networks put where a number would be.
_NO_NUMBER = frozenset({"", "anonymous", "unknown", "<unknown>", "restricted", "private"})
HANDSET_SOURCES = frozenset({"pidf-lo", "geoloc-profile"})


@dataclass
class Hop:
    queue: str
    at: float
    reason: str


@dataclass
class LiveCall:
    linkedid: str
    arrived_at: float
    raw_number: str = ""
    number: str = ""
    caller_state: str = ""
    emergency_type: str = ""
    language: str = ""
    location_source: str = ""
    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    cell_id: str = ""
    method: str = ""
    confidence: str = ""
    regency_code: str = ""
    trunk: str = ""
    channel: str = ""  # the caller's channel (a handset fix may redirect it)
    hops: list[Hop] = field(default_factory=list)
    ringing: set[str] = field(default_factory=set)
    offered: set[str] = field(default_factory=set)
    answered_by: str = ""
    channels: dict[str, str] = field(default_factory=dict)
    ended_at: float | None = None
    classification: dict[str, str] | None = None

    @property
    def number_kind(self) -> str:
        """e164, withheld, none, or raw (a number we could not normalise)."""
        if self.caller_state == "withheld":
            return "withheld"
        if self.number:
            return "e164"
        if self.caller_state == "no-number" or self.raw_number.lower() in _NO_NUMBER:
            return "none"
        return "raw"

    @property
    def location_kind(self) -> str:
        """handset (the phone's own fix, PIDF-LO) or network (cell), or none."""
        if self.lat is None or self.lon is None:
            return "none"
        return "handset" if self.location_source in HANDSET_SOURCES else "network"

    @property
    def phase(self) -> str:
        if self.ended_at is not None:
            return "ended"
        if self.answered_by:
            return "connected"
        if self.ringing:
            return "ringing"
        return "queued" if self.hops else "ivr"

    @property
    def queues(self) -> set[str]:
        return {hop.queue for hop in self.hops}


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def decode_note(value: str) -> str:
    """Notes travel JSON-encoded (one AMI line, the exact text); anything else as it is."""
    try:
        text = json.loads(value)
    except ValueError:
        return value
    return text if isinstance(text, str) else value


def operator_of(interface: str, by_interface: Mapping[str, str]) -> str:
    """``PJSIP/op3578`` (or a member channel ``PJSIP/op3578-0000001a``) -> ``op3578``."""
    if interface in by_interface:
        return by_interface[interface]
    head, _, _ = interface.rpartition("-")
    return by_interface.get(head, "")


class Board:
    """Calls in progress plus the most recent ended ones."""

    def __init__(self, interfaces: Mapping[str, str], clock: Any = time.time) -> None:
        self._interfaces = dict(interfaces)  # Asterisk interface -> operator id
        self._clock = clock
        self.active: dict[str, LiveCall] = {}
        self.recent: OrderedDict[str, LiveCall] = OrderedDict()

    def get(self, linkedid: str) -> LiveCall | None:
        return self.active.get(linkedid) or self.recent.get(linkedid)

    def calls(self) -> Iterable[LiveCall]:
        yield from self.active.values()
        yield from reversed(self.recent.values())

    def adopt(self, call: LiveCall) -> None:
        """A call learnt from the audit store (after an AMI gap), unless we know it better."""
        if call.linkedid in self.active or call.linkedid in self.recent:
            return
        if call.ended_at is None:
            self.active[call.linkedid] = call
        else:
            self._retire(call)

    def end(self, linkedid: str, at: float) -> bool:
        call = self.active.pop(linkedid, None)
        if call is None:
            return False
        call.ended_at = at
        call.ringing.clear()
        self._retire(call)
        return True

    def _retire(self, call: LiveCall) -> None:
        self.recent[call.linkedid] = call
        while len(self.recent) > RECENT_CALLS:
            self.recent.popitem(last=False)

    def apply(self, frame: Frame) -> str | None:
        """Fold one event in; the linkedid whose card changed, if any."""
        linkedid = event_linkedid(frame)
        name = frame.event or ""
        if not linkedid:
            return None
        # Asterisk's own stamp (timestampevents): right even when we read the event late.
        now = _float(frame.get("Timestamp")) or self._clock()
        call = self.active.get(linkedid)
        if name == "Newchannel":
            if frame.get("Uniqueid") != linkedid or call is not None:
                return None
            self.active[linkedid] = LiveCall(linkedid, now,
                                             raw_number=frame.get("CallerIDNum") or "",
                                             channel=frame.get("Channel") or "")
            return linkedid
        if name == "UserEvent" and frame.get("UserEvent") == "ConsoleAction":
            return self._console_action(frame, linkedid)
        if call is None:
            return None
        handler = _HANDLERS.get(name)
        if handler is None:
            return None
        changed = handler(self, call, frame, now)
        return linkedid if changed else None

    def _console_action(self, frame: Frame, linkedid: str) -> str | None:
        call = self.get(linkedid)
        if call is None or frame.get("Operation") != "classify":
            return None
        call.classification = {
            "category": frame.get("Category") or "",
            "note": decode_note(frame.get("Note") or ""),
            "by": frame.get("User") or "",
        }
        return linkedid


def _user_event(board: Board, call: LiveCall, frame: Frame, now: float) -> bool:
    kind = frame.get("UserEvent")
    if kind == "IVRChoice":
        call.emergency_type = frame.get("EmergencyType") or call.emergency_type
        call.language = frame.get("Language") or call.language
    elif kind == "IVRLocation":
        call.number = frame.get("CallerE164") or ""
        call.caller_state = frame.get("CallerState") or ""
        call.location_source = frame.get("Source") or ""
        call.lat, call.lon = _float(frame.get("Lat")), _float(frame.get("Lon"))
        call.radius_m = _float(frame.get("Radius"))
        call.cell_id = frame.get("CellId") or ""
        call.regency_code = frame.get("RegencyCode") or ""
        call.method = frame.get("Method") or ""
        call.confidence = frame.get("Confidence") or ""
        call.trunk = frame.get("Trunk") or ""
    elif kind == "CallQueued":
        call.emergency_type = frame.get("EmergencyType") or call.emergency_type
        call.language = frame.get("Language") or call.language
    elif kind == "AMLRoute":
        # The caller's handset fix moved them (telephony.aml.routing): a hop, and its why.
        call.hops.append(Hop(frame.get("To") or "", now, "handset-location"))
        call.regency_code = frame.get("RegencyCode") or call.regency_code
    elif kind in ("QueueOverflow", "Handover"):
        reason = "overflow" if kind == "QueueOverflow" else "handover"
        call.hops.append(Hop(frame.get("To") or "", now, reason))
    else:
        return False
    return True


def _queue_join(board: Board, call: LiveCall, frame: Frame, now: float) -> bool:
    queue = frame.get("Queue") or ""
    if call.hops and call.hops[-1].queue == queue:
        return False
    call.hops.append(Hop(queue, now, "queued" if not call.hops else "rejoin"))
    return True


def _agent_called(board: Board, call: LiveCall, frame: Frame, now: float) -> bool:
    op = operator_of(frame.get("Interface") or "", board._interfaces)
    if not op:
        return False
    call.ringing.add(op)
    call.offered.add(op)
    channel = frame.get("DestChannel")
    if channel:
        call.channels[op] = channel
    return True


def _agent_stopped(board: Board, call: LiveCall, frame: Frame, now: float) -> bool:
    op = operator_of(frame.get("Interface") or "", board._interfaces)
    if op not in call.ringing:
        return False
    call.ringing.discard(op)
    return True


def _agent_connect(board: Board, call: LiveCall, frame: Frame, now: float) -> bool:
    op = operator_of(frame.get("Interface") or "", board._interfaces)
    call.ringing.clear()
    call.answered_by = op or frame.get("MemberName") or ""
    channel = frame.get("DestChannel")
    if op and channel:
        call.channels[op] = channel
    return True


def _blind_transfer(board: Board, call: LiveCall, frame: Frame, now: float) -> bool:
    # The caller is back in the dialplan (handover): nobody has them until a new answer.
    call.answered_by = ""
    return True


def _hangup(board: Board, call: LiveCall, frame: Frame, now: float) -> bool:
    if frame.get("Uniqueid") == call.linkedid:
        return board.end(call.linkedid, now)
    for op, channel in list(call.channels.items()):
        if channel == frame.get("Channel"):
            call.ringing.discard(op)
            if call.answered_by == op:
                call.answered_by = ""
            return True
    return False


_HANDLERS = {
    "UserEvent": _user_event,
    "QueueCallerJoin": _queue_join,
    "AgentCalled": _agent_called,
    "AgentRingNoAnswer": _agent_stopped,
    "AgentConnect": _agent_connect,
    "BlindTransfer": _blind_transfer,
    "Hangup": _hangup,
}
