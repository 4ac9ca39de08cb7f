"""AMI sessions: how every part of telephony reaches Asterisk's manager interface, and short
sessions for command-line tools (presence, callbacks), apart from serve's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from telephony.ami import AMIConnection, Frame
from telephony.ami.stream import client_context
from telephony.config import Config, resolve_path
from telephony.pbx.render import Layout, ami_secret

CONNECT_TIMEOUT_S = 5.0


class ControlError(Exception):
    """Asterisk's manager interface could not be reached."""


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
