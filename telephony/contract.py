"""Names that Python and Asterisk's configuration share, defined once.

The templates in dialplans/ receive them (pbx/render.py passes this module's values in), so
a name changed here changes on both sides.
"""

from __future__ import annotations

# Set by the SIP edge alone (it removes any a trunk sends): the trunk Asterisk identifies the
# call by, and the address the INVITE came from (PJSIP_HEADER(read,X-Telephony-Source)).
TRUNK_HEADER = "X-Telephony-Trunk"
SOURCE_HEADER = "X-Telephony-Source"

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
