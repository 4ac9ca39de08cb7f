"""Threaded FastAGI server: Asterisk's AGI(agi://host:port/<script>,...) lands here.

Each connection is one call, served in its own thread and dispatched on agi_network_script
through an explicit table of scripts. The design goal is that this server can never hold a call:

- a session slot is taken without waiting; when all are busy the connection is closed at
  once and Asterisk continues in the dialplan, which fails open to the default queue;
- every socket read and write has a timeout, and EOF ends the session;
- a per-session watchdog shuts the socket down when the session overruns its budget,
  which also interrupts a playing prompt, so Asterisk moves on in the dialplan;
- a handler exception is logged with the call's linkedid and turned into
  IVR_STATUS=FAILED, which sends the call to the dialplan's failure extension.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

import structlog
from asterisk.agi import AGIAppError, AGIError, AGIHangup, AGISIGPIPEHangup

from telephony.agi.channel import (
    Channel,
    ConnectionClosed,
    LineReader,
    ProtocolError,
    SessionAGI,
    read_env,
)
from telephony.agi.timings import CommandTimings
from telephony.contract import Var

log = structlog.get_logger(__name__)

STATUS_VARIABLE = Var.IVR_STATUS
LINKEDID = "${CHANNEL(linkedid)}"
# How often the accept loop looks at the stop flag when nothing wakes it.
ACCEPT_POLL = 0.2


@dataclass(frozen=True)
class Session:
    """One call's AGI conversation, as handed to a script's handler."""

    channel: Channel
    env: Mapping[str, str]
    script: str
    args: tuple[str, ...]
    uniqueid: str
    linkedid: str
    # time.monotonic() when Asterisk connected: handlers measure their budget from here.
    started: float


Handler = Callable[[Session], None]


class _Watchdog:
    """Shuts a session's socket down once its budget is spent, so Asterisk moves on.

    shutdown() rather than close(): close() does not wake a thread blocked in recv().
    """

    def __init__(self, conn: socket.socket, budget: float) -> None:
        self.expired = threading.Event()
        self.call_ids: dict[str, str] = {}
        self._conn = conn
        self._timer = threading.Timer(budget, self._expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def close_now(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.shutdown(socket.SHUT_RDWR)

    def _expire(self) -> None:
        self.expired.set()
        # The timer thread has none of the session's context variables.
        log.error("agi.session_over_budget", **self.call_ids)
        self.close_now()


class FastAGIServer:
    """Serve FastAGI sessions on host:port, one thread per session.

    scripts maps agi_network_script (the path of agi://host:port/<script>) to a handler.
    Use start() and stop() from the service's main loop.
    """

    def __init__(
        self,
        host: str,
        port: int,
        scripts: Mapping[str, Handler],
        *,
        max_sessions: int = 64,
        read_timeout: float = 10.0,
        session_budget: float = 11.0,
        timings: CommandTimings | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._scripts = dict(scripts)
        self._max_sessions = max_sessions
        self._read_timeout = read_timeout
        self._session_budget = session_budget
        self.timings = timings if timings is not None else CommandTimings()
        self._slots = threading.BoundedSemaphore(max_sessions)
        self._sessions: dict[threading.Thread, _Watchdog] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); useful when constructed with port 0."""
        if self._listener is None:
            raise RuntimeError("FastAGIServer is not started")
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def active_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def start(self) -> None:
        if self._listener is not None:
            raise RuntimeError("FastAGIServer already started")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        listener = socket.create_server(
            (self._host, self._port), family=family, backlog=self._max_sessions
        )
        listener.settimeout(ACCEPT_POLL)
        self._listener = listener
        self._stopping.clear()
        self._acceptor = threading.Thread(
            target=self._accept_loop, args=(listener,), name="fastagi-accept", daemon=True
        )
        self._acceptor.start()
        log.info("agi.listening", address=self.address, scripts=sorted(self._scripts))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, then wait up to timeout for sessions before cutting them off."""
        listener, acceptor = self._listener, self._acceptor
        if listener is None or acceptor is None:
            return
        self._stopping.set()
        # Wakes a blocked accept() at once on Linux; the accept timeout covers the rest.
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        acceptor.join()
        listener.close()
        self._listener = None
        self._acceptor = None
        deadline = time.monotonic() + timeout
        with self._lock:
            sessions = dict(self._sessions)
        for thread in sessions:
            thread.join(max(0.0, deadline - time.monotonic()))
        stragglers = [(t, w) for t, w in sessions.items() if t.is_alive()]
        for _, watchdog in stragglers:
            watchdog.close_now()
        for thread, _ in stragglers:
            thread.join(1.0)
        log.info("agi.stopped", cut_off=len(stragglers))

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    break
                # Out of file descriptors and the like: back off instead of spinning.
                log.error("agi.accept_failed", error=repr(exc))
                self._stopping.wait(ACCEPT_POLL)
                continue
            if not self._slots.acquire(blocking=False):
                log.error(
                    "agi.session_limit_refused", max_sessions=self._max_sessions
                )
                conn.close()
                continue
            watchdog = _Watchdog(conn, self._session_budget)
            thread = threading.Thread(
                target=self._serve, args=(conn, watchdog), name="fastagi-session", daemon=True
            )
            with self._lock:
                self._sessions[thread] = watchdog
            try:
                watchdog.start()
                thread.start()
            except RuntimeError as exc:
                # Out of threads: drop this call (the dialplan fails open), keep accepting.
                log.error("agi.session_thread_failed", error=repr(exc))
                watchdog.cancel()
                conn.close()
                with self._lock:
                    self._sessions.pop(thread, None)
                self._slots.release()

    def _serve(self, conn: socket.socket, watchdog: _Watchdog) -> None:
        started = time.monotonic()
        try:
            with conn, structlog.contextvars.bound_contextvars(uniqueid="", linkedid=""):
                conn.settimeout(self._read_timeout)
                rfile = conn.makefile("rb")
                wfile = conn.makefile("w", encoding="utf-8", newline="\n")
                try:
                    self._converse(LineReader(rfile), wfile, watchdog, started)
                finally:
                    rfile.close()
                    # Flushing into a dead socket fails; the session is over either way.
                    with contextlib.suppress(OSError):
                        wfile.close()
        finally:
            watchdog.cancel()
            with self._lock:
                self._sessions.pop(threading.current_thread(), None)
            self._slots.release()

    def _converse(
        self, reader: LineReader, writer: TextIO, watchdog: _Watchdog, started: float
    ) -> None:
        channel: Channel | None = None
        script = ""
        try:
            env = read_env(reader)
            script = env.get("agi_network_script", "")
            uniqueid = env.get("agi_uniqueid", "")
            watchdog.call_ids["uniqueid"] = uniqueid
            structlog.contextvars.bind_contextvars(uniqueid=uniqueid)
            channel = Channel(SessionAGI(reader, writer, env, self.timings))
            linkedid = channel.get(LINKEDID)
            watchdog.call_ids["linkedid"] = linkedid
            structlog.contextvars.bind_contextvars(linkedid=linkedid)
            handler = self._scripts.get(script)
            if handler is None:
                log.error("agi.unknown_script", script=script)
                _report_failure(channel)
                return
            handler(Session(channel, env, script, _args(env), uniqueid, linkedid, started))
            log.info(
                "agi.session_finished", script=script, seconds=round(time.monotonic() - started, 3)
            )
        except (ConnectionClosed, OSError, AGISIGPIPEHangup) as exc:
            # The socket is gone (peer, watchdog or timeout): nothing can be reported back.
            log.warning(
                "agi.connection_lost",
                script=script,
                error=repr(exc),
                over_budget=watchdog.expired.is_set(),
            )
        except AGIHangup as exc:
            log.info("agi.caller_hung_up", script=script, error=repr(exc))
        except AGIAppError as exc:
            # result=-1: usually the caller hung up mid-prompt, but a missing sound file
            # looks the same, so the dialplan is still told when the channel is alive.
            log.warning("agi.command_failed", script=script, error=repr(exc))
            if channel is not None:
                _report_failure(channel)
        except (ProtocolError, AGIError) as exc:
            # Asterisk (or whatever connected) answered outside the protocol.
            log.error("agi.protocol_error", script=script, error=repr(exc))
            if channel is not None:
                _report_failure(channel)
        except Exception:
            log.exception("agi.handler_failed", script=script)
            if channel is not None:
                _report_failure(channel)


def _report_failure(channel: Channel) -> None:
    try:
        channel.set(STATUS_VARIABLE, "FAILED")
    except AGIHangup:
        log.info("agi.failure_not_reported_hung_up")
    except Exception as exc:
        log.warning("agi.failure_not_reported", error=repr(exc))


def _args(env: Mapping[str, str]) -> tuple[str, ...]:
    args: list[str] = []
    while (value := env.get(f"agi_arg_{len(args) + 1}")) is not None:
        args.append(value)
    return tuple(args)
