"""AMI sessions: how every part of telephony reaches Asterisk's manager interface, short
sessions for command-line tools (presence, callbacks), apart from serve's own, and a
session that records events to watch calls move through Asterisk (test-call, the tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from telephony.ami import AMIConnection, Frame
from telephony.ami.stream import client_context
from telephony.config import Config, resolve_path
from telephony.errors import TelephonyError
from telephony.pbx.layout import Layout, ami_secret

CONNECT_TIMEOUT_S = 5.0


class ControlError(TelephonyError):
    """Asterisk's manager interface could not be reached."""


class EventTimeout(ControlError, TimeoutError):
    """The AMI event waited for did not come."""


def ami_address(config: Config) -> tuple[str, int]:
    """Where telephony connects: the TLS listener when there is one, else plain AMI."""
    ast = config.asterisk
    return ast.ami_bind, ast.ami_tls_port or ast.ami_port


def ami_connection(
    config: Config, on_event: Callable[[Frame], None], **options: Any
) -> AMIConnection:
    """An AMIConnection (not started) as configured; `options` go to AMIConnection."""
    ast = config.asterisk
    secret = ami_secret(config, Layout(resolve_path(ast.runtime_dir)))
    tls = None
    if ast.ami_tls_port:
        tls = client_context(resolve_path(ast.tls_ca_file) if ast.tls_ca_file else None)
    host, port = ami_address(config)
    return AMIConnection(
        host, port, config.ami.username, secret, on_event=on_event, tls=tls, **options
    )


def _ignore(_frame: Frame) -> None:
    """Command-line sessions act; they do not listen."""


@contextmanager
def ami_session(config: Config) -> Iterator[AMIConnection]:
    ami = ami_connection(config, _ignore, backoff_max_s=1.0)
    ami.start()
    try:
        if not ami.wait_connected(CONNECT_TIMEOUT_S):
            host, port = ami_address(config)
            raise ControlError(
                f"Asterisk's AMI at {host}:{port} did not accept user "
                f"{config.ami.username!r} within {CONNECT_TIMEOUT_S:.0f}s"
            )
        yield ami
    finally:
        ami.stop()


@dataclass(frozen=True)
class Seen:
    frame: Frame
    at: float  # time.monotonic() when it arrived


class Watcher:
    """Every event of one AMI session, kept in arrival order; waiting on them is safe from
    any thread (the session's reader only appends)."""

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
                    raise EventTimeout(f"no {name} event within {timeout}s; saw {names}")
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
    """A logged-in AMI session whose events are recorded by the Watcher yielded."""
    watcher = Watcher()
    conn = ami_connection(config, watcher.on_event)
    conn.start()
    try:
        if not conn.wait_connected(CONNECT_TIMEOUT_S * 3):
            host, port = ami_address(config)
            raise ControlError(
                f"Asterisk's AMI at {host}:{port} did not accept user {config.ami.username!r}"
            )
        yield watcher
    finally:
        conn.stop()
