"""The development and test sandbox: provisioned Asterisk + rendered runtime directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from telephony.config import Config, resolve_path
from telephony.pbx.layout import Layout
from telephony.pbx.process import Asterisk
from telephony.pbx.provision import AsteriskInstall, provision
from telephony.pbx.render import write_sandbox


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    runtime_dir: str
    channels: int | None


def layout_for(config: Config) -> Layout:
    return Layout(resolve_path(config.asterisk.runtime_dir))


def install_for(config: Config, rebuild: bool = False) -> AsteriskInstall:
    return provision(
        config.asterisk.binary, resolve_path(config.asterisk.cache_dir), rebuild=rebuild
    )


def start(
    config: Config, install: AsteriskInstall, *, edit: Callable[[Layout], None] | None = None
) -> Asterisk:
    """Render the sandbox from dialplans/ and config/ into its runtime directory, start
    Asterisk and wait until booted. `edit` changes the rendered files first (the bench's
    baseline dialplan)."""
    layout = layout_for(config)
    write_sandbox(config, install, layout)
    if edit is not None:
        edit(layout)
    asterisk = Asterisk(install, layout)
    asterisk.start(config.asterisk.boot_timeout_s)
    return asterisk


def up(config: Config) -> Asterisk:
    """`telephony asterisk up`: (re)start the sandbox of this configuration."""
    install = install_for(config)
    Asterisk(install, layout_for(config)).stop()
    return start(config, install)


def attach(config: Config) -> Asterisk:
    """An Asterisk handle for a sandbox that may already run (for down/status/cli)."""
    return Asterisk(install_for(config), layout_for(config))


def status(config: Config) -> Status:
    asterisk = attach(config)
    pid = asterisk.pid()
    channels = asterisk.channel_count() if pid is not None else None
    return Status(pid is not None, pid, str(asterisk.layout.root), channels)
