"""The routing hook of the IVR: which queue a call goes to, and extra channel variables.

The router is someone else's code (the location resolver) running inside a live
emergency call, so it is never trusted: it runs in its own thread with a time limit,
and an exception, a timeout or an unusable answer all mean the fallback queue.
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from telephony.contract import Var

log = structlog.get_logger(__name__)

QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,79}")
MAX_VALUE_LENGTH = 1024
# Variables the IVR itself sets; a router must not overwrite the dialplan contract.
RESERVED_VARIABLES = frozenset(
    {Var.EMERGENCY_TYPE, Var.IVR_LANGUAGE, Var.TARGET_QUEUE, Var.QUEUE_PRIORITY, Var.SCREEN_TAG,
     Var.IVR_STATUS}
)


@dataclass(frozen=True)
class RouteDecision:
    """The queue for the call, plus channel variables to set before it is queued."""

    target_queue: str
    channel_vars: Mapping[str, str] = field(default_factory=dict)


class Router(Protocol):
    def route(self, session_vars: Mapping[str, str], emergency_type: str) -> RouteDecision:
        """Choose a queue from the call's SIP/location data and the caller's choice.

        session_vars holds linkedid, uniqueid, callerid, channel, the SIP headers
        P-Asserted-Identity, Remote-Party-ID, From, Privacy, P-Access-Network-Info and
        Geolocation (header name as key, "" when absent), location_info
        (GEOLOC_PROFILE(location_info)) and trunk_trusted (the trunk's TRUNK_TRUSTED).
        emergency_type is police, medical, fire, sar, disaster or unknown.
        """
        ...


class DefaultRouter:
    """Every call to one queue, no extra variables."""

    def __init__(self, default_queue: str) -> None:
        self._decision = RouteDecision(default_queue)

    def route(self, session_vars: Mapping[str, str], emergency_type: str) -> RouteDecision:
        return self._decision


class PendingRoute:
    """router.route() running in the background while the caller hears a prompt."""

    def __init__(
        self,
        router: Router,
        session_vars: Mapping[str, str],
        emergency_type: str,
        fallback_queue: str,
    ) -> None:
        self.started = time.monotonic()
        self._fallback = RouteDecision(fallback_queue)
        self._outcome: RouteDecision | None = None
        self._router = router
        # Copy the context so the router's log lines carry the call's linkedid.
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run,
            args=(self._run, dict(session_vars), emergency_type),
            name="ivr-router",
            daemon=True,
        )
        self._thread.start()

    def _run(self, session_vars: dict[str, str], emergency_type: str) -> None:
        try:
            self._outcome = _checked(self._router.route(session_vars, emergency_type))
        except Exception:
            log.exception(
                "router.failed_fallback", fallback_queue=self._fallback.target_queue
            )

    def result(self, not_after: float) -> RouteDecision:
        """The router's decision, or the fallback if it has not answered by not_after."""
        self._thread.join(max(0.0, not_after - time.monotonic()))
        if self._thread.is_alive():
            log.error(
                "router.slow_fallback",
                fallback_queue=self._fallback.target_queue,
                waited=round(time.monotonic() - self.started, 3),
            )
            return self._fallback
        return self._outcome or self._fallback


def _checked(decision: object) -> RouteDecision:
    """Validate a router's answer; raises ValueError when the queue itself is unusable."""
    if not isinstance(decision, RouteDecision):
        raise ValueError(f"router returned {type(decision).__name__}, not RouteDecision")
    queue = decision.target_queue
    if not isinstance(queue, str) or not QUEUE_NAME.fullmatch(queue):
        raise ValueError(f"router returned an unusable queue name: {queue!r}")
    kept: dict[str, str] = {}
    for name, value in dict(decision.channel_vars).items():
        if (
            isinstance(name, str)
            and VARIABLE_NAME.fullmatch(name)
            and name not in RESERVED_VARIABLES
            and isinstance(value, str)
            and len(value) <= MAX_VALUE_LENGTH
            and not any(ch in value for ch in "\r\n\0")
        ):
            kept[name] = value
        else:
            log.warning("router.variable_dropped", variable=repr(name)[:100])
    return RouteDecision(queue, kept)
