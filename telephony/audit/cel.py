"""Asterisk's CEL as cel_custom writes it (``dialplans/cel_custom.conf``), parsed (pure).

One CSV line per CEL event with the columns eventtype, eventtime, uniqueid, linkedid, channame,
cid_num, exten, context, appname, appdata, bridgepeer and the event's extra JSON. Asterisk
writes it without us, so it is the independent record the audit is reconciled against.

``eventtime`` is whatever cel.conf ``dateformat`` makes it: epoch seconds with microseconds when
unset, or local wall-clock text such as ``%F %T`` (whole seconds, in the zone Asterisk runs in).
Both are read; text times are taken in ``tz``, the local zone by default.

A line that is not a CEL row (torn, truncated, wrong column count, bad time, no ids) is skipped
and counted, never raised: the file is shared with a running Asterisk and with whoever edits it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from telephony.ami.frames import Frame
from telephony.audit.events import canonical_json
from telephony.audit.projection import endpoint_of
from telephony.audit.times import parse_time
from telephony.contract import CHANNEL_STATE_UP

COLUMNS = 12
LINKEDID_END = "LINKEDID_END"

# CEL rows with an AMI counterpart in the audit trail, and the AMI event each stands for.
AMI_EQUIVALENT = {
    "CHAN_START": "Newchannel",
    "ANSWER": "Newstate",
    "HANGUP": "Hangup",
    "BRIDGE_ENTER": "BridgeEnter",
    "BRIDGE_EXIT": "BridgeLeave",
}
# The application a dialled channel shows in CEL: Queue and Dial put their targets in these.
_DIALLED_APPS = frozenset({"AppQueue", "AppDial", "AppDial2"})


@dataclass(frozen=True)
class CelRecord:
    event_type: str
    time: datetime
    uniqueid: str
    linkedid: str
    channel: str
    caller_num: str
    exten: str
    context: str
    app_name: str
    app_data: str
    bridge_peer: str
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class CelParse:
    records: tuple[CelRecord, ...]
    skipped: int


@dataclass(frozen=True)
class CelLeg:
    uniqueid: str
    records: tuple[CelRecord, ...]


@dataclass(frozen=True)
class CelCall:
    linkedid: str
    records: tuple[CelRecord, ...]
    """The call's rows in file order."""
    legs: tuple[CelLeg, ...]
    """In order of first appearance."""
    started_at: datetime
    ended_at: datetime | None
    """Time of ``LINKEDID_END``: None while any channel of the call still exists."""


@dataclass(frozen=True)
class CallFacts:
    """What CEL shows about a call that the AMI projection learns from queue and agent events."""

    queued_at: datetime | None = None
    queue: str | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    hangup_cause: int | None = None


def parse_extra(text: str) -> dict[str, object]:
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def parse_line(line: str, tz: tzinfo | None = None) -> CelRecord | None:
    """One CSV line to a record, or None when it is not a well-formed CEL row."""
    # A power cut can leave a file's last blocks full of NULs; no CEL field holds one.
    if "\x00" in line:
        return None
    try:
        rows = list(csv.reader([line.rstrip("\r\n")], strict=True))
    except csv.Error:
        return None
    if len(rows) != 1 or len(rows[0]) != COLUMNS:
        return None
    event_type, when, uniqueid, linkedid, *rest = rows[0]
    time = parse_time(when, tz)
    if not event_type or time is None or not uniqueid or not linkedid:
        return None
    channel, caller_num, exten, context, app_name, app_data, bridge_peer, extra = rest
    return CelRecord(
        event_type=event_type,
        time=time,
        uniqueid=uniqueid,
        linkedid=linkedid,
        channel=channel,
        caller_num=caller_num,
        exten=exten,
        context=context,
        app_name=app_name,
        app_data=app_data,
        bridge_peer=bridge_peer,
        extra=parse_extra(extra),
    )


def parse_lines(lines: Iterable[str], tz: tzinfo | None = None) -> CelParse:
    records: list[CelRecord] = []
    skipped = 0
    for line in lines:
        if not line.strip():
            continue
        record = parse_line(line, tz)
        if record is None:
            skipped += 1
        else:
            records.append(record)
    return CelParse(tuple(records), skipped)


def group_calls(records: Iterable[CelRecord]) -> list[CelCall]:
    """Rows by call (linkedid) and leg (uniqueid), calls in order of their first row."""
    calls: dict[str, list[CelRecord]] = {}
    for record in records:
        calls.setdefault(record.linkedid, []).append(record)
    grouped = []
    for linkedid, rows in calls.items():
        legs: dict[str, list[CelRecord]] = {}
        for row in rows:
            legs.setdefault(row.uniqueid, []).append(row)
        ends = [r.time for r in rows if r.event_type == LINKEDID_END]
        grouped.append(
            CelCall(
                linkedid=linkedid,
                records=tuple(rows),
                legs=tuple(CelLeg(uid, tuple(leg)) for uid, leg in legs.items()),
                started_at=min(r.time for r in rows),
                ended_at=ends[-1] if ends else None,
            )
        )
    return grouped


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def to_frame(record: CelRecord, received_ns: int) -> Frame | None:
    """The AMI event a CEL row stands for, carrying the row itself; None if it has none.

    ``Timestamp`` is the CEL time, so the audit event is dated when it happened; the ``CEL*``
    fields keep what CEL said, so a reader can tell a reconstruction from a received event.
    """
    name = AMI_EQUIVALENT.get(record.event_type)
    if name is None:
        return None
    stamp = record.time.timestamp()
    fields = [
        ("Event", name),
        ("Timestamp", f"{int(stamp)}.{record.time.microsecond:06d}"),
        ("Channel", record.channel),
        ("Uniqueid", record.uniqueid),
        ("Linkedid", record.linkedid),
        ("CallerIDNum", record.caller_num),
        ("Exten", record.exten),
        ("Context", record.context),
    ]
    if name == "Newstate":
        fields += [("ChannelState", CHANNEL_STATE_UP), ("ChannelStateDesc", "Up")]
    cause = _int(record.extra.get("hangupcause"))
    if name == "Hangup" and cause is not None:
        fields.append(("Cause", str(cause)))
    bridge = record.extra.get("bridge_id")
    if isinstance(bridge, str) and bridge:
        fields.append(("BridgeUniqueid", bridge))
    fields.append(("CELEventType", record.event_type))
    if record.bridge_peer:
        fields.append(("CELBridgePeer", record.bridge_peer))
    if record.app_name:
        fields += [("CELApplication", record.app_name), ("CELAppData", record.app_data)]
    if record.extra:
        fields.append(("CELExtra", canonical_json(dict(record.extra))))
    return Frame(fields, received_ns)


def dialled(leg: CelLeg) -> bool:
    """Whether the leg was dialled by Queue or Dial, i.e. an operator (or transfer) leg."""
    return any(record.app_name in _DIALLED_APPS for record in leg.records)


def call_facts(call: CelCall) -> CallFacts:
    """Queueing, answer and hangup cause of the call's originating channel, as CEL shows them.

    The caller was queued from its first row inside the Queue application; it was answered at
    the first bridge it shares with a peer (our callers only ever bridge with whoever answers).
    """
    origin = next((leg for leg in call.legs if leg.uniqueid == call.linkedid), None)
    if origin is None:
        return CallFacts()
    channel = origin.records[0].channel
    queued = next((r for r in origin.records if r.app_name == "Queue"), None)
    hangup = next((r for r in origin.records if r.event_type == "HANGUP"), None)
    answer: tuple[datetime, str] | None = None
    for record in call.records:
        if record.event_type != "BRIDGE_ENTER" or not record.bridge_peer:
            continue
        if record.uniqueid == call.linkedid:
            answer = record.time, record.bridge_peer
        elif record.bridge_peer == channel:
            answer = record.time, record.channel
        if answer is not None:
            break
    return CallFacts(
        queued_at=queued.time if queued else None,
        queue=(queued.app_data.split(",", 1)[0] or None) if queued else None,
        answered_at=answer[0] if answer else None,
        answered_by=endpoint_of(answer[1]) if answer else None,
        hangup_cause=_int(hangup.extra.get("hangupcause")) if hangup else None,
    )
