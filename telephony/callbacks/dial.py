"""Calling a citizen back: the operator's phone first, then, once they answer, the citizen."""

from __future__ import annotations

from telephony.ami import AMIConnection
from telephony.callbacks.items import CallbackItem
from telephony.contract import Var
from telephony.operators.roster import Operator


def originate_callback(ami: AMIConnection, item: CallbackItem, op: Operator) -> None:
    """Ring the operator first; when they answer, callback-112 dials the citizen."""
    ami.send_action(
        "Originate", Channel=op.interface, Context="callback-112", Exten="s", Priority="1",
        CallerID=f'"CB {item.caller}" <{item.caller}>', Timeout="30000", Async="true",
        variables={Var.CALLBACK_NUMBER: item.caller, Var.CALLBACK_ID: str(item.id),
                   "CALLROLE": "callback"},
    )
