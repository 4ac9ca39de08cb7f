"""`telephony serve`: one process that hosts the FastAGI server and the AMI client.

Components start in order and stop in reverse; SIGTERM and SIGINT stop them cleanly.
The audit writer starts before the AMI client and stops after it, so every event the
client hands over is written (or spooled) before the process exits.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Protocol

import structlog
from sqlalchemy import Engine

from telephony.agi import IVR, CommandTimings, FastAGIServer, Router
from telephony.ami import AMIConnection, AMIError, Frame
from telephony.audit import AuditWriter
from telephony.audit.checkpoints import checkpoint_key
from telephony.audit.intake import Intake
from telephony.audit.reconcile import cel_path, reconcile_on_connect
from telephony.audit.recording import RecordingSealer
from telephony.callbacks.items import sweep
from telephony.config import Config, resolve_path
from telephony.control import ami_connection
from telephony.edge.pidf import validator_for
from telephony.edge.regency import sets_for
from telephony.edge.registered import Qualifier
from telephony.edge.stats import edge_collector
from telephony.health import Monitor, health_component
from telephony.location import SqlCellDatabase, SqlRouteTable, load_regions
from telephony.location.router import LocationRouter
from telephony.messages.live import ActiveMessages
from telephony.operators import presence
from telephony.operators.roster import load_roster
from telephony.pbx.render import queues
from telephony.store import open_database

log = structlog.get_logger(__name__)

SWEEP_INTERVAL_S = 2.0
# How long a thread may hold the GIL while another waits (Python's default is 5 ms). A
# FastAGI reply that arrives while the audit writer hashes and builds SQL waits up to this
# long for each step of its session thread: shorter hands the GIL over sooner.
SWITCH_INTERVAL_S = 0.001


class Component(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def audit_path(value: str) -> Path:
    path = resolve_path(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class PresenceKeeper:
    """Puts logged-in operators back into Asterisk's queues, from the database.

    Triggered by FullyBooted, which Asterisk sends to every new AMI session once all its
    modules are loaded: restoring on login alone would race a booting app_queue. The work
    runs on this component's own thread, never on the AMI reader.
    """

    def __init__(self, config: Config, engine: Engine) -> None:
        self._config = config
        self._engine = engine
        self.ami: AMIConnection | None = None
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="presence", daemon=True)

    def request(self) -> None:
        self._wanted.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wanted.set()
        self._thread.join(10)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._stop.is_set():
                return
            self._wanted.clear()
            if self.ami is not None:
                self._restore(self.ami)

    def _restore(self, ami: AMIConnection) -> None:
        config = self._config
        regions = load_regions(resolve_path(config.location.regions_file))
        roster = load_roster(resolve_path(config.operators.file), regions)
        try:
            presence.restore(ami, roster, presence.states(self._engine), regions, queues(config))
        except AMIError as exc:
            log.error("presence.restore_failed", error=str(exc))


class CallbackSweeper:
    """Turns abandoned calls into callback items every few seconds, off the AMI path."""

    def __init__(self, config: Config, engine: Engine) -> None:
        self._config = config
        self._engine = engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callback-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        options = self._config.callbacks
        while not self._stop.wait(SWEEP_INTERVAL_S):
            try:
                sweep(self._engine, options.merge_window_s, options.min_ivr_s)
            except Exception:  # a bad row must not end callbacks for the rest of the shift
                log.exception("callbacks.sweep_failed")


def agi_component(
    config: Config,
    router: Router,
    timings: CommandTimings | None = None,
    announcements: ActiveMessages | None = None,
) -> FastAGIServer:
    ivr = IVR(
        resolve_path(config.ivr.prompts_dir), router, fallback_queue=config.ivr.default_queue,
        announcements=announcements,
    )
    return FastAGIServer(
        config.agi.bind,
        config.agi.port,
        {"ivr": ivr},
        max_sessions=config.agi.max_sessions,
        read_timeout=config.agi.read_timeout_s,
        session_budget=config.agi.session_budget_s,
        timings=timings,
    )


def components(config: Config) -> list[Component]:
    """Audit first, so the calls the AGI server starts serving are already being recorded."""
    engine = open_database(config)
    regions = load_regions(resolve_path(config.location.regions_file))
    router = LocationRouter(regions, SqlCellDatabase(engine), SqlRouteTable(engine))
    events = Intake(audit_path(config.audit.overflow_path), config.audit.queue_size)
    writer = AuditWriter(
        engine,
        events,
        audit_path(config.audit.spool_path),
        audit_path(config.audit.checkpoint_path),
        checkpoint_key(config),
        quarantine_path=audit_path(config.audit.quarantine_path),
        checkpoint_interval_s=config.audit.checkpoint_interval_s,
    )
    keeper = PresenceKeeper(config, engine)
    monitor = Monitor()
    sealer = RecordingSealer(
        events, resolve_path(config.recording.directory), config.recording.retention_days
    )

    def on_event(frame: Frame) -> None:
        events.put(frame)
        monitor.observe(frame)
        sealer.observe(frame)
        if frame.event == "FullyBooted":
            keeper.request()

    ami = ami_connection(
        config,
        on_event,
        on_connect=reconcile_on_connect(writer, engine, cel_path(config)),
        on_quarantine=events.put,
        keepalive_s=config.ami.keepalive_s,
    )
    keeper.ami = ami
    messages = ActiveMessages(engine, config.messages.refresh_s)
    agi = agi_component(config, router, monitor.agi_timings, messages)
    edge: list[Component] = []
    if config.edge.enabled:
        # Behind the edge, Kamailio asks this process whether a PIDF-LO is safe for Asterisk
        # and tells it which phone just registered there (to be qualified at once), and
        # /metrics carries Kamailio's counters.
        # In a cluster, the edge also asks which nodes a new call goes to.
        qualifier = Qualifier(ami)
        sets = sets_for(config, SqlRouteTable(engine))
        edge += [qualifier, validator_for(config, on_registered=qualifier.request,
                                          regency=sets.answer if sets else None)]
        monitor.registry.register(edge_collector(config))
    return [
        writer, sealer, keeper, ami, CallbackSweeper(config, engine), messages, agi, *edge,
        health_component(config, monitor, ami=ami, agi=agi, writer=writer),
    ]


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
        sys.setswitchinterval(SWITCH_INTERVAL_S)
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
