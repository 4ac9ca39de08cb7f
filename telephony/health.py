"""Health and metrics over HTTP: ``/healthz`` for on-call and load balancers, ``/metrics``
for Prometheus.

Two parts. :class:`Monitor` keeps what only AMI events and AGI sessions can tell (calls in
progress, callers and operators per queue, answer times, AGI command latency); its
``observe`` runs on the AMI reader thread, so it only updates dicts under a lock.
:class:`HealthServer` is the edge: a ThreadingHTTPServer in a thread that reads the monitor
and the components' own state when asked.

Events missed while AMI was away would leave the gauges wrong for good (a caller who left
during the outage would wait forever), so every AMI session marks the monitor stale, and the
next scrape rebuilds it from ``CoreShowChannels`` and ``QueueStatus``. A session shows as its
``FullyBooted`` event, which Asterisk sends each new session once all its modules are loaded
(and not on reloads): the rebuild cannot race a booting app_queue.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from telephony.agi.timings import CommandTimings
from telephony.ami import AMIError, Frame, ListResult
from telephony.audit import WriterMetrics
from telephony.config import Config

log = structlog.get_logger(__name__)

# The operator changes, which the audit does not ask AMI for; manager_112.conf must let them
# through (render.AMI_EVENTS) or operators only show up at the resync after each login.
MONITORED_EVENTS = ("QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause")
_CHANNEL_EVENTS = frozenset({"Newchannel", "Hangup"})
_QUEUE_EVENTS = frozenset(
    {"QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", *MONITORED_EVENTS}
)
_OBSERVED = _CHANNEL_EVENTS | _QUEUE_EVENTS | {"AgentConnect", "FullyBooted"}
# Answer times cluster around the queue alert (15 s); AGI commands range from a variable read
# (ms) to a whole prompt played (seconds).
ANSWER_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0)
AGI_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RESYNC_TIMEOUT_S = 5.0
# How soon the serving thread notices stop().
STOP_POLL_S = 0.1


@dataclass(frozen=True)
class QueueState:
    callers: int
    longest_wait_s: float
    available: int
    paused: int


@dataclass(frozen=True)
class Snapshot:
    calls: int
    queues: dict[str, QueueState]
    ami_sessions: int


def _field(frame: Frame, key: str) -> str:
    return frame.get(key) or ""


def _stamp(frame: Frame) -> int:
    return frame.received_ns or time.time_ns()


def _cutoff(result: ListResult) -> int:
    return (result.complete or result.response).received_ns


class _ObservedTimings(CommandTimings):
    """The AGI server's timings, also counted into a cumulative Prometheus histogram: the
    sample window alone cannot give counters that only ever grow."""

    def __init__(self, histogram: Histogram) -> None:
        super().__init__()
        self._histogram = histogram

    def record(self, command: str, seconds: float) -> None:
        super().record(command, seconds)
        self._histogram.labels(command.strip().upper()).observe(seconds)


class Monitor:
    """Gauges kept from AMI events; ``agi_timings`` goes to ``FastAGIServer(timings=...)``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._answer = Histogram(
            "telephony_answer_seconds",
            "From the caller's channel appearing to an operator connected (per Linkedid)",
            buckets=ANSWER_BUCKETS,
            registry=self.registry,
        )
        self.agi_timings: CommandTimings = _ObservedTimings(
            Histogram(
                "telephony_agi_command_seconds",
                "Round trip of one AGI command (playing commands include the prompt)",
                ["command"],
                buckets=AGI_BUCKETS,
                registry=self.registry,
            )
        )
        self._lock = threading.Lock()
        self._channels: dict[str, set[str]] = {}  # linkedid -> uniqueids
        self._started: dict[str, int] = {}  # linkedid -> ns the caller's channel appeared
        self._waiting: dict[str, dict[str, int]] = {}  # queue -> uniqueid -> ns joined
        self._members: dict[str, dict[str, bool]] = {}  # queue -> interface -> paused
        self._queues: set[str] = set()
        self._sessions = 0
        self._stale = False
        self._journal: list[Frame] | None = None

    def observe(self, frame: Frame) -> None:
        """Chain into ``AMIConnection(on_event=...)``: only dict updates under a lock."""
        name = frame.event
        if name not in _OBSERVED:
            return
        answered: float | None = None
        with self._lock:
            if name == "FullyBooted":
                self._sessions += 1
                self._stale = True
                return
            if self._journal is not None:
                self._journal.append(frame)
            self._apply(frame)
            linkedid = _field(frame, "Linkedid")
            if name == "Newchannel" and frame.get("Uniqueid") == linkedid:
                self._started[linkedid] = _stamp(frame)
            elif name == "AgentConnect" and linkedid in self._started:
                answered = (_stamp(frame) - self._started.pop(linkedid)) / 1e9
        if answered is not None:
            self._answer.observe(max(0.0, answered))

    @property
    def stale(self) -> bool:
        with self._lock:
            return self._stale

    def begin_resync(self) -> int:
        """Start journaling events; the returned generation goes to ``finish_resync``."""
        with self._lock:
            self._journal = []
            return self._sessions

    def abort_resync(self) -> None:
        with self._lock:
            self._journal = None

    def finish_resync(self, generation: int, channels: ListResult, queues: ListResult) -> None:
        """Replace the gauges with Asterisk's lists, then replay what arrived after each."""
        live: dict[str, set[str]] = {}
        for frame in channels.events:
            live.setdefault(_field(frame, "Linkedid"), set()).add(_field(frame, "Uniqueid"))
        queue_cut = _cutoff(queues)
        names: set[str] = set()
        waiting: dict[str, dict[str, int]] = {}
        members: dict[str, dict[str, bool]] = {}
        for frame in queues.events:
            queue = _field(frame, "Queue")
            names.add(queue)
            if frame.event == "QueueEntry":
                wait_ns = int(_field(frame, "Wait") or 0) * 1_000_000_000
                waiting.setdefault(queue, {})[_field(frame, "Uniqueid")] = queue_cut - wait_ns
            elif frame.event == "QueueMember":
                interface = frame.get("Location") or _field(frame, "Interface")
                members.setdefault(queue, {})[interface] = frame.get("Paused") == "1"
        with self._lock:
            journal, self._journal = self._journal or [], None
            self._channels, self._waiting, self._members = live, waiting, members
            self._queues = names
            self._started = {k: v for k, v in self._started.items() if k in live}
            channel_cut = _cutoff(channels)
            for frame in journal:
                later = _stamp(frame) > (
                    channel_cut if frame.event in _CHANNEL_EVENTS else queue_cut
                )
                if later and frame.event != "AgentConnect":
                    self._apply(frame)
            if self._sessions == generation:
                self._stale = False

    def snapshot(self, now_ns: int | None = None) -> Snapshot:
        now_ns = time.time_ns() if now_ns is None else now_ns
        with self._lock:
            queues = {}
            for name in sorted(self._queues):
                joined = self._waiting.get(name, {}).values()
                paused = self._members.get(name, {}).values()
                queues[name] = QueueState(
                    callers=len(joined),
                    longest_wait_s=max(0.0, (now_ns - min(joined)) / 1e9) if joined else 0.0,
                    available=sum(1 for p in paused if not p),
                    paused=sum(1 for p in paused if p),
                )
            return Snapshot(len(self._channels), queues, self._sessions)

    def _apply(self, frame: Frame) -> None:
        """The state an event changes; idempotent, so a replay over a resync is harmless."""
        name = frame.event
        queue = _field(frame, "Queue")
        if name in _QUEUE_EVENTS:
            self._queues.add(queue)
        if name == "Newchannel":
            self._channels.setdefault(_field(frame, "Linkedid"), set()).add(
                _field(frame, "Uniqueid")
            )
        elif name == "Hangup":
            linkedid = _field(frame, "Linkedid")
            legs = self._channels.get(linkedid, set())
            legs.discard(_field(frame, "Uniqueid"))
            if not legs:
                self._channels.pop(linkedid, None)
                self._started.pop(linkedid, None)
        elif name == "QueueCallerJoin":
            self._waiting.setdefault(queue, {})[_field(frame, "Uniqueid")] = _stamp(frame)
        elif name in ("QueueCallerLeave", "QueueCallerAbandon"):
            self._waiting.get(queue, {}).pop(_field(frame, "Uniqueid"), None)
        elif name in ("QueueMemberAdded", "QueueMemberPause"):
            paused = frame.get("Paused") == "1"
            self._members.setdefault(queue, {})[_field(frame, "Interface")] = paused
        elif name == "QueueMemberRemoved":
            self._members.get(queue, {}).pop(_field(frame, "Interface"), None)


class AMIProbe(Protocol):
    @property
    def connected(self) -> bool: ...

    def send_list_action(self, name: str, *, timeout: float = ...) -> ListResult: ...


class AGIProbe(Protocol):
    @property
    def address(self) -> tuple[str, int]: ...

    @property
    def active_sessions(self) -> int: ...


class WriterProbe(Protocol):
    def metrics(self) -> WriterMetrics: ...


class HealthServer:
    """``/healthz`` (200 ok, 503 degraded) and ``/metrics``, served from a thread."""

    def __init__(
        self, bind: str, port: int, *,
        monitor: Monitor, ami: AMIProbe, agi: AGIProbe, writer: WriterProbe,
    ) -> None:
        self._address = (bind, port)
        self._monitor, self._ami, self._agi, self._writer = monitor, ami, agi, writer
        self._resync_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        monitor.registry.register(_Collector(self))

    @property
    def address(self) -> tuple[str, int]:
        if self._httpd is None:
            raise RuntimeError("HealthServer is not started")
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        if self._httpd is not None:
            raise RuntimeError("HealthServer already started")
        self._httpd = ThreadingHTTPServer(self._address, partial(_Handler, self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(STOP_POLL_S,), name="health-http", daemon=True
        )
        self._thread.start()
        log.info("health.listening", address=self.address)

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.shutdown()
        thread.join()
        httpd.server_close()
        self._httpd = self._thread = None
        log.info("health.stopped")

    def checks(self) -> dict[str, dict[str, Any]]:
        metrics = self._writer.metrics()
        try:
            host, port = self._agi.address
            agi: dict[str, Any] = {"ok": True, "address": f"{host}:{port}"}
        except RuntimeError:
            agi = {"ok": False, "address": None}
        agi["active_sessions"] = self._agi.active_sessions
        return {
            "ami": {"ok": self._ami.connected},
            "agi": agi,
            "database": {"ok": metrics.db_available},
            # Anything spooled is not in the database yet: the audit trail is behind.
            "spool": {"ok": metrics.spool_backlog == 0, "backlog": metrics.spool_backlog},
        }

    def healthz(self) -> tuple[int, bytes]:
        checks = self.checks()
        ok = all(check["ok"] for check in checks.values())
        body = {"status": "ok" if ok else "degraded", "checks": checks}
        return (200 if ok else 503), json.dumps(body).encode()

    def metrics(self) -> bytes:
        self.resync()
        return generate_latest(self._monitor.registry)

    def resync(self) -> None:
        """Rebuild the monitor from Asterisk's lists if an AMI session began since the last."""
        if not self._monitor.stale or not self._ami.connected:
            return
        with self._resync_lock:
            if not self._monitor.stale:
                return
            generation = self._monitor.begin_resync()
            try:
                channels = self._ami.send_list_action("CoreShowChannels", timeout=RESYNC_TIMEOUT_S)
                queues = self._ami.send_list_action("QueueStatus", timeout=RESYNC_TIMEOUT_S)
            except AMIError as exc:
                self._monitor.abort_resync()
                log.warning("health.resync_failed", error=str(exc))
                return
            self._monitor.finish_resync(generation, channels, queues)
            log.info("health.resynced", channels=len(channels.events))

    def collect(self) -> Iterator[Metric]:
        snap = self._monitor.snapshot()
        audit = self._writer.metrics()
        queue_label = ["queue"]
        callers = GaugeMetricFamily(
            "telephony_queue_callers", "Callers waiting in the queue", labels=queue_label
        )
        longest = GaugeMetricFamily(
            "telephony_queue_longest_wait_seconds",
            "How long the longest-waiting caller has been in the queue",
            labels=queue_label,
        )
        operators = GaugeMetricFamily(
            "telephony_queue_operators", "Queue members by state", labels=["queue", "state"]
        )
        for name, state in snap.queues.items():
            callers.add_metric([name], state.callers)
            longest.add_metric([name], state.longest_wait_s)
            operators.add_metric([name, "available"], state.available)
            operators.add_metric([name, "paused"], state.paused)
        yield from (callers, longest, operators)
        lag_s = audit.lag_ms[-1] / 1000 if audit.lag_ms else 0.0
        gauges = (
            ("calls_in_progress", "Calls (Linkedids) with a live channel", snap.calls),
            ("ami_connected", "1 while logged in to AMI", self._ami.connected),
            ("agi_sessions", "FastAGI sessions in progress", self._agi.active_sessions),
            ("audit_spool_backlog", "Spooled events not in the database", audit.spool_backlog),
            ("audit_database_up", "1 when the last audit commit succeeded", audit.db_available),
            ("audit_lag_seconds", "Receive-to-commit lag of the latest audited event", lag_s),
        )
        for name, text, value in gauges:
            yield GaugeMetricFamily(f"telephony_{name}", text, value=float(value))
        counters = (
            ("ami_reconnects", "AMI sessions after the first one", max(0, snap.ami_sessions - 1)),
            ("audit_events_written", "Events committed to the audit store",
             audit.events_written),
            ("audit_events_spooled", "Events that went to the spool first",
             audit.events_spooled),
        )
        for name, text, count in counters:
            yield CounterMetricFamily(f"telephony_{name}", text, value=count)


class _Collector:
    def __init__(self, server: HealthServer) -> None:
        self._server = server

    def collect(self) -> Iterator[Metric]:
        return self._server.collect()


class _Handler(BaseHTTPRequestHandler):
    def __init__(self, app: HealthServer, *args: Any) -> None:
        self.app = app
        super().__init__(*args)

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        try:
            if path == "/healthz":
                status, body = self.app.healthz()
                kind = "application/json"
            elif path == "/metrics":
                status, body, kind = 200, self.app.metrics(), CONTENT_TYPE_LATEST
            else:
                status, body, kind = 404, b"not found\n", "text/plain"
        except Exception:
            log.exception("health.request_failed", path=path)
            status, body, kind = 500, b"internal error\n", "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health.request", client=self.client_address[0], request=format % args)


def health_component(
    config: Config, monitor: Monitor, *, ami: AMIProbe, agi: AGIProbe, writer: WriterProbe
) -> HealthServer:
    return HealthServer(
        config.health.bind, config.health.port, monitor=monitor, ami=ami, agi=agi, writer=writer
    )
