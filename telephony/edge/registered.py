"""A phone that registers at the edge is ringable at once (docs/edge.md, "Qualify and device
state").

Asterisk learns that an operator's phone is reachable only from its own qualify of the
operator's AOR through the edge, every EDGE_QUALIFY_S. The edge's registrar tells serve of
each registration (telephony.edge.pidf, `GET /edge/pidf/registered`), and the Qualifier asks
Asterisk to qualify that endpoint now (AMI PJSIPQualify), from a thread of its own: neither
the HTTP thread Kamailio waits on nor the AMI reader ever waits for Asterisk here.

Best effort: a request dropped (queue full, AMI down) only means the phone waits for the
periodic qualify, as it did before.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

import structlog

from telephony.ami import AMIError

log = structlog.get_logger(__name__)

# More operators registering at once than a centre has seats: a burst (every phone back
# after an edge restart) is coalesced per operator, and what overflows waits for Asterisk's
# own qualify.
QUEUE_SIZE = 256
# PJSIPQualify answers at once ("will qualify"); the qualify itself runs in Asterisk.
ACTION_TIMEOUT_S = 2.0


class ActionSender(Protocol):
    """What the Qualifier needs of serve's AMIConnection."""

    def send_action(
        self,
        name: str,
        *,
        timeout: float = ...,
        variables: Mapping[str, str] | None = ...,
        **fields: str,
    ) -> object: ...


class Qualifier:
    """Qualifies operators' endpoints on request, each once however often it was asked."""

    def __init__(self, ami: ActionSender, size: int = QUEUE_SIZE) -> None:
        self._ami = ami
        self._size = size
        # Insertion-ordered set: the order phones registered in, each id once.
        self._waiting: dict[str, None] = {}
        self._stopping = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="edge-qualifier", daemon=True)

    def request(self, op: str) -> None:
        """Queue a qualify of `op`'s endpoint; never blocks."""
        with self._cond:
            if op in self._waiting:
                return
            full = len(self._waiting) >= self._size
            if not full:
                self._waiting[op] = None
                self._cond.notify()
        if full:
            log.warning("edge.qualify_dropped", op=op, queued=self._size)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(10)

    def _next(self) -> str | None:
        with self._cond:
            while not self._waiting and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            op = next(iter(self._waiting))
            del self._waiting[op]
            return op

    def _run(self) -> None:
        while (op := self._next()) is not None:
            try:
                self._ami.send_action("PJSIPQualify", Endpoint=op, timeout=ACTION_TIMEOUT_S)
            except AMIError as exc:
                log.warning("edge.qualify_failed", op=op, error=str(exc))
