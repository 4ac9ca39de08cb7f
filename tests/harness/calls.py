"""One emergency call as Asterisk records it: CEL lines and AMI frames, for audit tests.

Caller queued at 10 s, operator answers at 14 s, caller hangs up at 60 s; times from T0.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from telephony.ami.frames import Frame
from telephony.audit.checkpoints import CheckpointLog
from telephony.audit.events import record_from_frame
from telephony.audit.store import ProjectionCache, write_batch

KEY = b"reconcile-test-key"
T0 = datetime(2026, 11, 28, 21, 16, 36, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)
CALLER, OP = "1795900596.2", "1795900596.3"
CALLER_CHAN, OP_CHAN = "PJSIP/trunk-mno-00000002", "PJSIP/op-test-00000003"
_stamps = itertools.count(1)


def cel(kind: str, at_s: int, uniqueid: str, linkedid: str = CALLER, **more: str) -> str:
    channel = CALLER_CHAN if uniqueid == CALLER else OP_CHAN
    values = [
        kind, (T0 + timedelta(seconds=at_s)).strftime("%Y-%m-%d %H:%M:%S"), uniqueid, linkedid,
        more.get("channel", channel), more.get("cid", "081234567890"), "s", "emergency-112",
        more.get("app", ""), more.get("appdata", ""), more.get("peer", ""), more.get("extra", ""),
    ]  # fmt: skip
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(values)
    return out.getvalue()


def hangup_extra(cause: int) -> str:
    return json.dumps({"hangupcause": cause, "hangupsource": CALLER_CHAN, "dialstatus": ""})


def answered_call_cel() -> list[str]:
    """Caller queued at 10 s, operator answers at 14 s, caller hangs up at 60 s."""
    bridge = json.dumps({"bridge_id": "b1", "bridge_technology": "simple_bridge"})
    queue_app = {"app": "Queue", "appdata": "prov-35"}
    op_app = {"app": "AppQueue", "appdata": "(Outgoing Line)"}
    return [
        cel("CHAN_START", 0, CALLER),
        cel("ANSWER", 0, CALLER, app="Answer"),
        cel("STREAM_BEGIN", 10, CALLER, **queue_app),
        cel("CHAN_START", 12, OP),
        cel("ANSWER", 14, OP, **op_app),
        cel("BRIDGE_ENTER", 14, OP, extra=bridge, **op_app),
        cel("BRIDGE_ENTER", 14, CALLER, peer=OP_CHAN, extra=bridge, **queue_app),
        cel("BRIDGE_EXIT", 60, CALLER, peer=OP_CHAN, extra=bridge, **queue_app),
        cel("HANGUP", 60, CALLER, extra=hangup_extra(16)),
        cel("CHAN_END", 60, CALLER),
        cel("BRIDGE_EXIT", 60, OP, extra=bridge, **op_app),
        cel("HANGUP", 60, OP, extra=hangup_extra(16), **op_app),
        cel("CHAN_END", 60, OP, **op_app),
        cel("LINKEDID_END", 60, OP, **op_app),
    ]


def ami(name: str, at_s: float, uniqueid: str = CALLER, **fields: str) -> Frame:
    stamp = T0 + timedelta(seconds=at_s)
    pairs = [
        ("Event", name),
        ("Timestamp", f"{stamp.timestamp():.6f}"),
        ("Uniqueid", uniqueid),
        ("Linkedid", CALLER),
        *fields.items(),
    ]
    return Frame(pairs, received_ns=int(stamp.timestamp() * 1e9) + next(_stamps))


def caller_until_queued() -> list[Frame]:
    """What AMI delivered before the outage: the caller's arrival, IVR and queueing."""
    return [
        ami("Newchannel", 0, Channel=CALLER_CHAN, CallerIDNum="081234567890"),
        ami("Newstate", 0.1, ChannelState="6", ChannelStateDesc="Up"),
        ami("UserEvent", 8, UserEvent="IVRChoice", EmergencyType="fire", Language="id"),
        ami("QueueCallerJoin", 10, Queue="prov-35"),
    ]


def rest_of_answered_call() -> list[Frame]:
    op = {"DestUniqueid": OP, "DestChannel": OP_CHAN, "DestLinkedid": CALLER}
    return [
        ami("Newchannel", 12, OP, Channel=OP_CHAN),
        ami("AgentCalled", 12, MemberName="op1001", **op),
        ami("Newstate", 14, OP, ChannelState="6", ChannelStateDesc="Up"),
        ami("BridgeEnter", 14, OP),
        ami("BridgeEnter", 14, CALLER),
        ami("AgentConnect", 14, MemberName="op1001", **op),
        ami("BridgeLeave", 60, CALLER),
        ami("Hangup", 60, CALLER, Cause="16"),
        ami("BridgeLeave", 60, OP),
        ami("Hangup", 60, OP, Cause="16"),
    ]


def record_live(engine: Engine, frames: list[Frame], checkpoints: Path) -> None:
    """Write frames as the live writer does, and pin the chain head with a checkpoint."""
    with Session(engine) as session, session.begin():
        items = [(record_from_frame(frame), frame) for frame in frames]
        result = write_batch(session, items, ProjectionCache(10))
    CheckpointLog(checkpoints, KEY).append(result.tail.seq, result.tail.hash, T0)


def write_cel(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(lines))
    return path
