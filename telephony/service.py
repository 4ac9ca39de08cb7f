"""`telephony serve`: one process that hosts the FastAGI server and the AMI client.

Components start in order and stop in reverse; SIGTERM and SIGINT stop them cleanly.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Protocol

import structlog

from telephony.config import Config

log = structlog.get_logger(__name__)


class Component(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class Service:
    def __init__(self, config: Config, components: list[Component] | None = None) -> None:
        self.config = config
        self.components: list[Component] = components if components is not None else []
        self._stop = threading.Event()

    def request_stop(self, signum: int = 0, _frame: FrameType | None = None) -> None:
        log.info("stop requested", signal=signal.Signals(signum).name if signum else None)
        self._stop.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        started: list[Component] = []
        try:
            for component in self.components:
                component.start()
                started.append(component)
            log.info("telephony ready", components=[type(c).__name__ for c in started])
            self._stop.wait()
        finally:
            for component in reversed(started):
                component.stop()
            log.info("telephony stopped")
        return 0
