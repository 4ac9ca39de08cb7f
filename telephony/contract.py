"""Names that Python and Asterisk's configuration share, defined once.

The templates in dialplans/ receive them (pbx/render.py passes this module's values in), so
a name changed here changes on both sides.
"""

from __future__ import annotations

from enum import StrEnum

# Set by the SIP edge alone (it removes any a trunk sends): the trunk Asterisk identifies the
# call by, and the address the INVITE came from (PJSIP_HEADER(read,X-Telephony-Source)).
TRUNK_HEADER = "X-Telephony-Trunk"
SOURCE_HEADER = "X-Telephony-Source"

# Asterisk queue names: a regency's own queue, its overflow queue (its own and its launched
# neighbours' operators), the province queue. The dialplan builds the hops from the prefixes.
REGENCY_QUEUE = "reg-"
OVERFLOW_QUEUE = "ovf-"
PROVINCE_QUEUE = "prov-"


def regency_queue(code: str) -> str:
    """35.07 -> reg-3507."""
    return REGENCY_QUEUE + code.replace(".", "")


def overflow_queue(code: str) -> str:
    """35.07 -> ovf-3507."""
    return OVERFLOW_QUEUE + code.replace(".", "")


def province_queue(code: str) -> str:
    """35 -> prov-35."""
    return PROVINCE_QUEUE + code


class Var(StrEnum):
    """Channel variables that Python sets (IVR, router, callbacks) and the dialplan reads."""

    EMERGENCY_TYPE = "EMERGENCY_TYPE"
    IVR_LANGUAGE = "IVR_LANGUAGE"
    TARGET_QUEUE = "TARGET_QUEUE"
    QUEUE_PRIORITY = "QUEUE_PRIORITY"
    SCREEN_TAG = "SCREEN_TAG"
    IVR_STATUS = "IVR_STATUS"
    CALLER_E164 = "CALLER_E164"
    LOCATION_SOURCE = "LOCATION_SOURCE"
    LOCATION_LAT = "LOCATION_LAT"
    LOCATION_LON = "LOCATION_LON"
    LOCATION_RADIUS = "LOCATION_RADIUS"
    CELL_ID = "CELL_ID"
    CELL_REPORTED = "CELL_REPORTED"
    REGENCY_CODE = "REGENCY_CODE"
    LOCATION_METHOD = "LOCATION_METHOD"
    LOCATION_CONFIDENCE = "LOCATION_CONFIDENCE"
    CALLER_STATE = "CALLER_STATE"
    CALLBACK_ID = "CALLBACK_ID"
    CALLBACK_NUMBER = "CALLBACK_NUMBER"
    # Set by the console (AMI Setvar) before it redirects a caller its handset fix moves.
    AML_QUEUE = "AML_QUEUE"
    AML_REGENCY = "AML_REGENCY"
    AML_POSITION = "AML_POSITION"
    AML_FIX = "AML_FIX"


class UserEvent(StrEnum):
    """The UserEvents the dialplan and the IVR send, which the audit and test-call read."""

    IVR_CHOICE = "IVRChoice"
    IVR_LOCATION = "IVRLocation"
    IVR_FAIL_OPEN = "IVRFailOpen"
    CALL_QUEUED = "CallQueued"
    QUEUE_OVERFLOW = "QueueOverflow"
    HANDOVER = "Handover"
    RECORDING_STARTED = "RecordingStarted"
    CALLBACK_DIAL = "CallbackDial"
    # The IVR: a major-incident message starts playing to the caller; a key cut it short.
    MESSAGE_PLAYED = "MessagePlayed"
    MESSAGE_SKIPPED = "MessageSkipped"
    # Sent over AMI by the console and the CLI, not by a channel. One about a call carries the
    # call's ids; one about no call (a login, a presence change) carries none and enters the
    # chain with an empty linkedid.
    CONSOLE_ACTION = "ConsoleAction"
    # Sent by the console's AML receiver (telephony.aml.audit): a handset fix, with its call's
    # ids once matched; one that matches no call (yet), or was refused, carries none and enters
    # the chain with an empty linkedid, as a ConsoleAction about no call does.
    AML_FIX = "AMLFix"
    # Sent by the dialplan (aml-112) when a handset fix moved a waiting caller: a queue hop.
    AML_ROUTE = "AMLRoute"


# AMI's ChannelState of an answered channel (Asterisk's AST_STATE_UP); CEL says ANSWER.
CHANNEL_STATE_UP = "6"

# What the audit trail asks AMI for (AMIConnection(event_names=...)): the projected events and
# the ones kept only as evidence.
AUDITED_EVENTS = (
    "Newchannel",
    "Newstate",
    "DialBegin",
    "DialEnd",
    "BridgeEnter",
    "BridgeLeave",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "BlindTransfer",
    "AttendedTransfer",
    "Hangup",
    "UserEvent",
    "MixMonitorStart",
    "MixMonitorStop",
)

# What the service's AMI session receives: the audited events, queue membership (for the
# operator gauges of /metrics), the events that answer its resynchronisation list actions
# (CoreShowChannels, QueueStatus), and FullyBooted.
AMI_EVENTS = (
    *AUDITED_EVENTS,
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberPause",
    "FullyBooted",
    "CoreShowChannel",
    "CoreShowChannelsComplete",
    "QueueParams",
    "QueueMember",
    "QueueEntry",
    "QueueStatusComplete",
)

# Events Asterisk does not even build (manager.conf disabledevents): the most frequent ones,
# which no AMI user of ours reads. With a session logged in, Asterisk otherwise renders each
# of them (a dialplan step, a variable set, an AGI command's start and end, an RTCP report)
# before the per-user eventfilter drops it. Something that needs one takes it out of here.
DISABLED_AMI_EVENTS = (
    "Newexten",
    "VarSet",
    "AGIExecStart",
    "AGIExecEnd",
    "RTCPSent",
    "RTCPReceived",
)
