"""`telephony serve`: one process that hosts the FastAGI server and the AMI client.

Components start in order and stop in reverse; SIGTERM and SIGINT stop them cleanly.
The audit writer starts before the AMI client and stops after it, so every event the
client hands over is written (or spooled) before the process exits.
"""

from __future__ import annotations

import queue
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Protocol

import structlog
from sqlalchemy import Engine

from telephony.agi import IVR, FastAGIServer, Router
from telephony.ami import AMIConnection, Frame
from telephony.audit import AuditWriter
from telephony.config import Config, resolve_path
from telephony.location import SqlCellDatabase, SqlRouteTable, load_regions
from telephony.location.router import LocationRouter
from telephony.pbx.render import Layout, ami_secret
from telephony.secretfile import read_or_create
from telephony.store import open_database

log = structlog.get_logger(__name__)


class Component(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def checkpoint_key(config: Config) -> bytes:
    if config.audit.checkpoint_key:
        return config.audit.checkpoint_key.encode()
    return read_or_create(resolve_path(config.audit.checkpoint_key_file)).encode()


def audit_path(config: Config, value: str) -> Path:
    path = resolve_path(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def audit_components(config: Config, engine: Engine) -> list[Component]:
    """The audit writer and the AMI client that feeds it, in start order."""
    events: queue.Queue[Frame] = queue.Queue()
    writer = AuditWriter(
        engine,
        events,
        audit_path(config, config.audit.spool_path),
        audit_path(config, config.audit.checkpoint_path),
        checkpoint_key(config),
        checkpoint_interval_s=config.audit.checkpoint_interval_s,
    )
    secret = ami_secret(config, Layout(resolve_path(config.asterisk.runtime_dir)))
    ami = AMIConnection(
        config.asterisk.ami_bind,
        config.asterisk.ami_port,
        config.ami.username,
        secret,
        on_event=events.put,
        keepalive_s=config.ami.keepalive_s,
    )
    return [writer, ami]


def agi_component(config: Config, router: Router) -> FastAGIServer:
    ivr = IVR(
        resolve_path(config.ivr.prompts_dir), router, fallback_queue=config.ivr.default_queue
    )
    return FastAGIServer(
        config.agi.bind,
        config.agi.port,
        {"ivr": ivr},
        max_sessions=config.agi.max_sessions,
        read_timeout=config.agi.read_timeout_s,
        session_budget=config.agi.session_budget_s,
    )


def location_router(config: Config, engine: Engine) -> LocationRouter:
    return LocationRouter(
        load_regions(resolve_path(config.location.regions_file)),
        SqlCellDatabase(engine),
        SqlRouteTable(engine),
        trusted_trunk=config.location.trunk_trusted,
    )


def components(config: Config) -> list[Component]:
    """Audit first, so the calls the AGI server starts serving are already being recorded."""
    engine = open_database(config)
    router = location_router(config, engine)
    return [*audit_components(config, engine), agi_component(config, router)]


class Service:
    def __init__(self, config: Config, parts: list[Component] | None = None) -> None:
        self.config = config
        self.parts = parts
        self._stop = threading.Event()

    def request_stop(self, signum: int = 0, _frame: FrameType | None = None) -> None:
        log.info("service.stop_requested", signal=signal.Signals(signum).name if signum else None)
        self._stop.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        parts = self.parts if self.parts is not None else components(self.config)
        started: list[Component] = []
        try:
            for part in parts:
                part.start()
                started.append(part)
            log.info("service.ready", components=[type(c).__name__ for c in started])
            self._stop.wait()
        finally:
            for part in reversed(started):
                part.stop()
            log.info("service.stopped")
        return 0

