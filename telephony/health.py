"""Health and metrics over HTTP: ``/healthz`` for on-call and load balancers, ``/metrics``
for Prometheus.

:class:`HealthServer` is the edge: a ThreadingHTTPServer in a thread that reads the
:class:`~telephony.monitor.Monitor` and the components' own state when asked. A probe must
get through whatever else is connected: every connection has a read timeout, at most
``max_connections`` are served at once, and a new one past the cap closes the longest-open
one (a probe's request takes milliseconds, so the oldest is an idle or stuck one).
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import structlog
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from telephony.ami import AMIError, ListResult
from telephony.audit import WriterMetrics
from telephony.config import Config
from telephony.monitor import Monitor

__all__ = ["HealthServer", "Monitor", "health_component"]

log = structlog.get_logger(__name__)

RESYNC_TIMEOUT_S = 5.0
# How soon the serving thread notices stop().
STOP_POLL_S = 0.1


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Connections wait in the kernel's accept queue, not as dropped SYNs retried a second later.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int) -> None:
        self._max = max_connections
        self._open: collections.OrderedDict[int, socket.socket] = collections.OrderedDict()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            while len(self._open) >= self._max:
                _, oldest = self._open.popitem(last=False)
                with contextlib.suppress(OSError):
                    oldest.shutdown(socket.SHUT_RDWR)  # its handler thread sees EOF and ends
            self._open[id(request)] = request
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client gone or evicted mid-request is routine here, not a traceback on stderr.
        log.debug("health.connection_failed", client=str(client_address))

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            if self._open.get(id(request)) is request:
                del self._open[id(request)]
        super().shutdown_request(request)


class HealthServer:
    """``/healthz`` (200 ok, 503 degraded) and ``/metrics``, served from a thread."""

    def __init__(
        self, bind: str, port: int, *,
        monitor: Monitor, ami: AMIProbe, agi: AGIProbe, writer: WriterProbe,
        max_audit_lag_s: float = 30.0, max_connections: int = 64,
        request_timeout_s: float = 2.0,
    ) -> None:
        self._address = (bind, port)
        self._max_lag_s = max_audit_lag_s
        self._max_connections = max_connections
        self._request_timeout_s = request_timeout_s
        self._monitor, self._ami, self._agi, self._writer = monitor, ami, agi, writer
        self._resync_lock = threading.Lock()
        self._httpd: _Server | None = None
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
        # StreamRequestHandler puts ``timeout`` on the socket: an idle connection ends after it.
        timed = type("_TimedHandler", (_Handler,), {"timeout": self._request_timeout_s})
        self._httpd = _Server(self._address, partial(timed, self), self._max_connections)
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
            # A dead writer thread or one far behind: events pile up unwritten.
            "writer": {
                "ok": metrics.alive and metrics.lag_s <= self._max_lag_s,
                "alive": metrics.alive,
                "lag_s": round(metrics.lag_s, 3),
                "max_lag_s": self._max_lag_s,
                "quarantined": metrics.quarantined,
            },
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
        lag_s = audit.lag_s
        gauges = (
            ("calls_in_progress", "Calls (Linkedids) with a live channel", snap.calls),
            ("ami_connected", "1 while logged in to AMI", self._ami.connected),
            ("agi_sessions", "FastAGI sessions in progress", self._agi.active_sessions),
            ("audit_spool_backlog", "Spooled events not in the database", audit.spool_backlog),
            ("audit_database_up", "1 when the last audit commit succeeded", audit.db_available),
            ("audit_lag_seconds", "How far the audit writer is behind (0 when caught up)",
             lag_s),
        )
        for name, text, value in gauges:
            yield GaugeMetricFamily(f"telephony_{name}", text, value=float(value))
        counters = (
            ("ami_reconnects", "AMI sessions after the first one", max(0, snap.ami_sessions - 1)),
            ("audit_events_written", "Events committed to the audit store",
             audit.events_written),
            ("audit_events_spooled", "Events that went to the spool first",
             audit.events_spooled),
            ("audit_quarantined", "Frames kept out of the chain, with their reason",
             audit.quarantined),
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
    health = config.health
    return HealthServer(
        health.bind, health.port, monitor=monitor, ami=ami, agi=agi, writer=writer,
        max_audit_lag_s=health.max_audit_lag_s, max_connections=health.max_connections,
        request_timeout_s=health.request_timeout_s,
    )
