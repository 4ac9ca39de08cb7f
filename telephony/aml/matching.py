"""Which call a handset fix belongs to (pure): the same E.164 number, within the window.

A fix received while the number's call is live, or up to ``after_s`` after it ended, goes
to that call (the most recent, if several); a fix received first waits up to ``before_s``
for the call (handsets may send before the network connects the call).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CallWindow:
    linkedid: str
    number: str
    arrived_at: float
    ended_at: float | None


def call_for(number: str, received_at: float, calls: Iterable[CallWindow],
             before_s: float, after_s: float) -> str | None:
    if not number:
        return None
    best: CallWindow | None = None
    for call in calls:
        if call.number != number:
            continue
        opens = call.arrived_at - before_s
        closes = (call.ended_at + after_s) if call.ended_at is not None else float("inf")
        if opens <= received_at <= closes and (best is None or call.arrived_at > best.arrived_at):
            best = call
    return best.linkedid if best is not None else None


def waiting_for(call: CallWindow, received_at: float, before_s: float) -> bool:
    """Whether a fix received at ``received_at`` (before the call was known) is this call's."""
    return call.arrived_at - before_s <= received_at
