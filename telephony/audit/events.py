"""Turning an AMI frame into the audit trail's normalised event record (pure).

Idempotency key: ``sha256`` over the canonical payload, the receive stamp and the source. The
AMI ``SequenceNumber`` header is no use here: Asterisk only sends it with manager.conf
``debug = on``, it is global to the Asterisk process and restarts at 0 with it. Content alone is
not enough either, because two genuine events can be byte-identical (the same DTMF digit twice
without ``timestampevents``). The reader stamps every frame with a strictly increasing
wall-clock nanosecond (:attr:`Frame.received_ns`) that travels with the frame into the spool, so
a replay after a failed or uncertain commit derives the same key, while two distinct receipts
never do. A CEL backfill sets ``source='cel-backfill'`` and a stamp taken from the CEL row,
which makes its replays idempotent too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from telephony.ami.frames import Frame
from telephony.audit.times import parse_time
from telephony.contract import AUDITED_EVENTS, UserEvent

# Channel-bearing events name their channel with a prefix (DialBegin's Dest*, transfers'
# Transferer*); the first present one is the event's call for indexing and projection.
_LINKEDID_HEADERS = ("Linkedid", "DestLinkedid", "TransfererLinkedid", "OrigTransfererLinkedid")
_UNIQUEID_HEADERS = ("Uniqueid", "DestUniqueid", "TransfererUniqueid", "OrigTransfererUniqueid")


def canonical_json(value: object) -> str:
    """Sorted-key compact JSON: one text per value, so hashes are reproducible anywhere."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class EventRecord:
    """One event as the audit table stores it, before it gets a seq and a place in the chain."""

    type: str
    time: datetime
    linkedid: str
    uniqueid: str
    payload: str
    source: str
    event_key: str
    received_ns: int


def first_header(frame: Frame, names: tuple[str, ...]) -> str:
    """The first of ``names`` present; a repeated one gives its last value, which is the one
    Asterisk wrote (telephony.ami.identity: the snapshot's ids follow caller-ID fields)."""
    for name in names:
        values = frame.get_all(name)
        if values and values[-1]:
            return values[-1]
    return ""


# The UserEvents our own AMI clients send (not a channel's dialplan): about no call, they have
# no Channel and no ids.
_SENT_OVER_AMI = frozenset({UserEvent.CONSOLE_ACTION.value, UserEvent.AML_FIX.value})
# app_queue publishes AgentComplete once the call is over, with the channels' latest
# snapshots; when both channels are already gone Asterisk sends it with neither (seen under
# the bench's load: 21 of 1200 calls). It changes no call (telephony.audit.projection), so it
# enters the chain unlinked, with its queue, member and times, rather than the quarantine,
# whose alert would then warn on every busy hour.
_SNAPSHOTS_MAY_BE_GONE = frozenset({"AgentComplete"})


def names_a_channel(frame: Frame) -> bool:
    """Whether the audit needs the event's channel ids: every audited event, but a console
    or CLI action about no call (a login, a presence change, a message published) and a
    handset fix that matches no call or was refused, which Asterisk sends for an AMI
    UserEvent action with no Channel, and an AgentComplete whose channels were gone. The
    identity guard has already made sure the frame is Asterisk's own, so a caller cannot
    forge one."""
    if frame.event not in AUDITED_EVENTS:
        return False
    if frame.event in _SNAPSHOTS_MAY_BE_GONE:
        return frame.get("Channel") is not None or frame.get("DestChannel") is not None
    return not (frame.event == "UserEvent" and frame.get("Channel") is None
                and frame.get("UserEvent") in _SENT_OVER_AMI)


def event_linkedid(frame: Frame) -> str:
    return first_header(frame, _LINKEDID_HEADERS)


def event_uniqueid(frame: Frame) -> str:
    return first_header(frame, _UNIQUEID_HEADERS)


def ns_to_datetime(ns: int) -> datetime:
    seconds, remainder = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=remainder // 1000)


def event_time(frame: Frame) -> datetime:
    """Asterisk's own ``Timestamp`` (manager.conf ``timestampevents = yes``), else receipt time."""
    stamp = frame.get("Timestamp")
    parsed = parse_time(stamp) if stamp else None
    return parsed if parsed is not None else ns_to_datetime(frame.received_ns)


def event_key(payload: str, received_ns: int, source: str) -> str:
    material = canonical_json({"payload": payload, "received_ns": received_ns, "source": source})
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def record_from_frame(frame: Frame, source: str = "ami") -> EventRecord:
    payload = canonical_json(frame.to_dict())
    return EventRecord(
        type=frame.event or frame.response or "",
        time=event_time(frame),
        linkedid=event_linkedid(frame),
        uniqueid=event_uniqueid(frame),
        payload=payload,
        source=source,
        event_key=event_key(payload, frame.received_ns, source),
        received_ns=frame.received_ns,
    )
