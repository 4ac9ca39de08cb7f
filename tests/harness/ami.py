"""A test-side AMI session that records events, to watch calls move through Asterisk."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from telephony.ami import Frame
from telephony.config import Config
from telephony.control import ami_connection


@dataclass(frozen=True)
class Seen:
    frame: Frame
    at: float  # time.monotonic() when it arrived


class Watcher:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._cond = threading.Condition()

    def on_event(self, frame: Frame) -> None:
        with self._cond:
            self.seen.append(Seen(frame, time.monotonic()))
            self._cond.notify_all()

    def wait_for(
        self, name: str, where: Callable[[Frame], bool] = lambda _f: True, timeout: float = 20.0
    ) -> Seen:
        """The first event called `name` that satisfies `where`, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for seen in self.seen:
                    if seen.frame.event == name and where(seen.frame):
                        return seen
                left = deadline - time.monotonic()
                if left <= 0:
                    names = [s.frame.event for s in self.seen]
                    raise AssertionError(f"no {name} event within {timeout}s; saw {names}")
                self._cond.wait(left)

    def clear(self) -> None:
        """Forget what was seen, so the next wait_for only sees what happens from now on."""
        with self._cond:
            self.seen.clear()

    def for_call(self, linkedid: str) -> list[Frame]:
        with self._cond:
            return [s.frame for s in self.seen if s.frame.get("Linkedid") == linkedid]


@contextmanager
def watching(config: Config) -> Iterator[Watcher]:
    watcher = Watcher()
    conn = ami_connection(config, watcher.on_event)
    conn.start()
    try:
        if not conn.wait_connected(15):
            raise AssertionError("the test could not log in to AMI")
        yield watcher
    finally:
        conn.stop()
