"""A pjsua2 softphone: a caller on the trunk (`telephony test-call`), or an operator.

pjsua is a process-wide singleton (one Endpoint per process) and crashes when driven from
arbitrary Python threads, so every Phone in the process shares one engine: one Endpoint
owned by one dedicated thread that polls `libHandleEvents` (`threadCnt=0`,
`mainThreadOnly=True`). Public methods post commands to that thread and wait for them with
timeouts. pjsua2 callbacks only record what happened into the handles, under each Phone's
condition variable; tests wait on that. The engine starts with the first Phone and is
destroyed (calls hung up and dropped, accounts and players dropped, `libDestroy`) when the
last Phone closes, or at interpreter exit if a test leaked one.

    with Phone("127.0.0.2", user="+6281234567890") as caller:
        call = caller.call("sip:112@127.0.0.1:5060", headers={"P-Asserted-Identity": "..."})
        call.wait_confirmed(10)
        call.send_dtmf("2")
        call.hangup()
        call.wait_disconnected(5)
"""

from __future__ import annotations

from telephony.phone.handles import (
    BodyPart,
    CallFailed,
    CallHandle,
    DtmfDigit,
    IncomingCall,
    Media,
    MediaStats,
    PhoneError,
    PhoneTimeout,
    RegEvent,
    RegistrationError,
    Security,
)
from telephony.phone.phone import Phone
from telephony.phone.sip import parse_name_addr, parse_sip_message, uri_host_port

__all__ = [
    "BodyPart", "CallFailed", "CallHandle", "DtmfDigit", "IncomingCall", "Media", "MediaStats",
    "Phone", "PhoneError", "PhoneTimeout", "RegEvent", "RegistrationError", "Security",
    "parse_name_addr", "parse_sip_message", "uri_host_port",
]
