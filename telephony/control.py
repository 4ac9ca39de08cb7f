"""Short AMI sessions for command-line tools (presence, callbacks), apart from serve's own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from telephony.ami import AMIConnection, Frame
from telephony.config import Config, resolve_path
from telephony.pbx.render import Layout, ami_secret

CONNECT_TIMEOUT_S = 5.0


class ControlError(Exception):
    """Asterisk's manager interface could not be reached."""


def _ignore(_frame: Frame) -> None:
    """Command-line sessions act; they do not listen."""


@contextmanager
def ami_session(config: Config) -> Iterator[AMIConnection]:
    secret = ami_secret(config, Layout(resolve_path(config.asterisk.runtime_dir)))
    ami = AMIConnection(
        config.asterisk.ami_bind, config.asterisk.ami_port, config.ami.username, secret,
        on_event=_ignore, backoff_max_s=1.0,
    )
    ami.start()
    try:
        if not ami.wait_connected(CONNECT_TIMEOUT_S):
            raise ControlError(
                f"Asterisk's AMI at {config.asterisk.ami_bind}:{config.asterisk.ami_port} "
                f"did not accept user {config.ami.username!r} within {CONNECT_TIMEOUT_S:.0f}s"
            )
        yield ami
    finally:
        ami.stop()
