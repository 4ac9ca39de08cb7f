"""The IVR's major-incident message step: who hears which message, and the audit of it.

The IVR asks an :class:`Announcements` source (serve's in-memory copy of the active
messages, never the database on the call path) whether a message covers the caller. Where
the caller is comes from the router, run early with the type still unknown and bounded like
any router call; a slow or failing router means no message, never a delay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from telephony.agi.channel import Channel
from telephony.agi.router import PendingRoute, Router
from telephony.contract import UserEvent, Var

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Announcement:
    message_id: int
    # Absolute path without extension, as STREAM FILE wants it.
    sound: str
    seconds: float


class Announcements(Protocol):
    def active(self) -> bool:
        """Is any message active at all? (Callers pay for the early route only then.)"""
        ...

    def covering(self, regency_code: str, lat: float | None,
                 lon: float | None) -> Announcement | None:
        """The newest active message whose area holds the caller, if any."""
        ...


def _float(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def find(source: Announcements, router: Router, call_vars: Mapping[str, str],
         fallback_queue: str, not_after: float) -> Announcement | None:
    if not source.active():
        return None
    decision = PendingRoute(router, call_vars, "unknown", fallback_queue).result(not_after)
    where = decision.channel_vars
    return source.covering(where.get(Var.REGENCY_CODE, ""),
                           _float(where.get(Var.LOCATION_LAT, "")),
                           _float(where.get(Var.LOCATION_LON, "")))


def audit(channel: Channel, event: UserEvent, announcement: Announcement, **fields: str) -> None:
    """UserEvent MessagePlayed / MessageSkipped on the caller's channel: the audit records it
    with the channel's own Uniqueid and Linkedid."""
    extra = "".join(f",{name}: {value}" for name, value in fields.items())
    if channel.exec("UserEvent", f"{event},MessageId: {announcement.message_id}{extra}") == "-2":
        log.error("ivr.message_not_audited", message_id=announcement.message_id)
