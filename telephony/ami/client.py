"""AMI client: the socket edge.

We keep our own reader thread and the pure :class:`~telephony.ami.frames.FrameParser` rather
than asterisk-ami's ``AMIClient`` (we only borrow its ``Action`` class to render actions), because
in asterisk-ami 0.1.7:

* its socket timeout applies to ``recv`` too, so an idle link raises in the reader and drops the
  session, while ``timeout=None`` lets ``connect`` hang forever;
* ``AutoReconnect`` pings and logs in again at a fixed delay from one thread, with no backoff,
  and a reconnect starts a second reader without reaping the first;
* response callbacks run on the reader thread and a raising callback hits an unimported
  ``traceback`` name, killing the reader;
* ``Event.read`` keeps one value per repeated header (except ``*ChanVariable``) and silently
  drops malformed lines; list actions (``EventList: start`` ... ``Complete``) are not collected;
* ``send`` may write partially, and action values are not checked for CR/LF.

Threads: a supervisor connects, logs in, installs event filters, calls ``on_connect`` and pings
every ``keepalive_s`` (a half-open socket shows up as an unanswered ping); a reader per
connection only parses, wakes waiting ``send_action`` callers and hands events to ``on_event``,
which must be cheap (put on a queue). ``tls`` runs the session over :mod:`telephony.ami.stream`.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from telephony.ami.frames import Frame, FrameParser, encode_action
from telephony.ami.identity import IdentityGuard, Quarantined
from telephony.ami.stream import Stream, open_stream
from telephony.errors import TelephonyError

log = structlog.get_logger(__name__)


class AMIError(TelephonyError):
    """Base class for AMI client errors."""


class NotConnected(AMIError, ConnectionError):
    """No logged-in session, or it was lost while the action was in flight."""


class ActionTimeout(AMIError, TimeoutError):
    """Asterisk did not answer the action in time."""


class ActionFailed(AMIError):
    """Asterisk answered ``Response: Error``."""

    def __init__(self, response: Frame) -> None:
        super().__init__(response.get("Message", "AMI action failed"))
        self.response = response


@dataclass
class ListResult:
    """A list action's reply: the response, its events, and the closing ``...Complete`` event."""

    response: Frame
    events: list[Frame] = field(default_factory=list)
    complete: Frame | None = None


@dataclass
class _Pending:
    collect_list: bool
    done: threading.Event = field(default_factory=threading.Event)
    result: ListResult | None = None
    lost: bool = False


def backoff_delay(attempt: int, initial_s: float, maximum_s: float) -> float:
    """Exponential delay before reconnect attempt ``attempt`` (0-based), capped at ``maximum_s``."""
    return float(min(maximum_s, initial_s * 2 ** min(attempt, 32)))


def include_filter(event_name: str) -> str:
    """Advanced ``MatchCriteria`` (Asterisk 22 ``Filter`` action) admitting one event by name."""
    return f"action(include),name({event_name})"


class _Clock:
    """Strictly increasing wall-clock ns: equal frames read together still get distinct stamps."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            return self._last


class AMIConnection:
    """A self-healing AMI session.

    ``event_names``, when given, installs one include filter per name with the ``Filter`` action
    after login (the AMI user needs ``system`` write permission); otherwise the filters in
    manager.conf apply, e.g. ``eventfilter(action(include),name(Hangup)) =``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        on_event: Callable[[Frame], None],
        on_connect: Callable[[], None] | None = None,
        *,
        keepalive_s: float = 5.0,
        keepalive_timeout_s: float | None = None,
        connect_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        event_names: Sequence[str] = (),
        tls: ssl.SSLContext | None = None,
        on_quarantine: Callable[[Quarantined], None] | None = None,
    ) -> None:
        self._address = (host, port)
        self._tls = tls
        self._username = username
        self._secret = secret
        self._on_event = on_event
        self._on_connect = on_connect
        self._on_quarantine = on_quarantine
        self._keepalive_s = keepalive_s
        self._keepalive_timeout_s = keepalive_timeout_s or keepalive_s
        self._io_timeout_s = connect_timeout_s
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._event_names = tuple(event_names)
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._send_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._id_prefix = f"t{random.getrandbits(32):08x}-"
        self._clock = _Clock()
        self._stream: Stream | None = None
        self._supervisor: threading.Thread | None = None
        self.version: str | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        if self._supervisor is not None:
            raise RuntimeError("AMIConnection already started")
        self._supervisor = threading.Thread(
            target=self._supervise, name="ami-supervisor", daemon=True
        )
        self._supervisor.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self.connected:
            with contextlib.suppress(AMIError):
                self.send_action("Logoff", timeout=min(timeout, 1.0))
        self._close_socket()
        if self._supervisor is not None:
            self._supervisor.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def send_action(
        self,
        name: str,
        *,
        timeout: float = 5.0,
        variables: Mapping[str, str] | None = None,
        **fields: str,
    ) -> Frame:
        """Send one action and return its response; raise :class:`ActionFailed` on Error."""
        if not self.connected:
            raise NotConnected(f"AMI not connected; cannot send {name}")
        return self._request(name, fields, variables, timeout, collect_list=False).response

    def send_list_action(
        self,
        name: str,
        *,
        timeout: float = 10.0,
        variables: Mapping[str, str] | None = None,
        **fields: str,
    ) -> ListResult:
        """Send a list action (CoreShowChannels, QueueStatus, ...) and collect its events."""
        if not self.connected:
            raise NotConnected(f"AMI not connected; cannot send {name}")
        return self._request(name, fields, variables, timeout, collect_list=True)

    def _request(
        self,
        name: str,
        fields: Mapping[str, str],
        variables: Mapping[str, str] | None,
        timeout: float,
        *,
        collect_list: bool,
    ) -> ListResult:
        action_id = f"{self._id_prefix}{next(self._ids)}"
        data = encode_action(name, action_id, fields, variables)
        pending = _Pending(collect_list)
        with self._pending_lock:
            self._pending[action_id] = pending
        try:
            self._send(data)
            if not pending.done.wait(timeout):
                raise ActionTimeout(f"no answer to {name} within {timeout}s")
        finally:
            with self._pending_lock:
                self._pending.pop(action_id, None)
        if pending.lost or pending.result is None:
            raise NotConnected(f"AMI connection lost while waiting for {name}")
        if (pending.result.response.response or "").lower() == "error":
            raise ActionFailed(pending.result.response)
        return pending.result

    def _send(self, data: bytes) -> None:
        stream = self._stream
        if stream is None:
            raise NotConnected("AMI socket closed")
        try:
            with self._send_lock:
                stream.sendall(data)
        except OSError as exc:
            # A partial write leaves the stream unframed: only a new connection recovers.
            self._close_socket()
            raise NotConnected(f"AMI send failed: {exc}") from exc

    def _supervise(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            logged_in = self._session()
            attempt = 0 if logged_in else attempt + 1
            if self._stopping.is_set():
                break
            delay = backoff_delay(attempt, *self._backoff) * random.uniform(0.75, 1.0)
            log.info("ami.reconnect_wait", delay_s=round(delay, 3), attempt=attempt)
            self._stopping.wait(delay)

    def _session(self) -> bool:
        """Run one connection until it drops; True if it got as far as a successful login."""
        try:
            stream = open_stream(self._address, self._io_timeout_s, self._tls)
        except OSError as exc:
            log.warning("ami.connect_failed", address=self._address, tls=bool(self._tls),
                        error=str(exc))
            return False
        if self._stopping.is_set():
            stream.close()
            return False
        banner = threading.Event()
        dead = threading.Event()
        self.version = None
        self._stream = stream
        reader = threading.Thread(
            target=self._read, args=(stream, banner, dead), name="ami-reader", daemon=True
        )
        reader.start()
        logged_in = False
        try:
            if not banner.wait(self._io_timeout_s) or self.version is None:
                log.warning("ami.no_banner", address=self._address)
                return False
            logged_in = self._login()
            if logged_in:
                self._keepalive(dead)
        finally:
            self._connected.clear()
            self._close_socket()
            reader.join(self._io_timeout_s)
            log.info("ami.disconnected", address=self._address)
        return logged_in

    def _login(self) -> bool:
        try:
            self._request(
                "Login",
                {"Username": self._username, "Secret": self._secret},
                None,
                self._io_timeout_s,
                collect_list=False,
            )
        except AMIError as exc:
            log.error("ami.login_failed", address=self._address, error=str(exc))
            return False
        try:
            for name in self._event_names:
                self._request(
                    "Filter",
                    {"Operation": "Add", "MatchCriteria": include_filter(name)},
                    None,
                    self._io_timeout_s,
                    collect_list=False,
                )
        except AMIError as exc:
            log.error("ami.filter_failed", error=str(exc))
            return False
        self._connected.set()
        log.info("ami.connected", address=self._address, version=self.version,
                 tls=bool(self._tls))
        if self._on_connect is not None:
            try:
                self._on_connect()
            except Exception:
                log.exception("ami.on_connect_failed")
        return True

    def _keepalive(self, dead: threading.Event) -> None:
        while not self._stopping.is_set() and not dead.wait(self._keepalive_s):
            try:
                self.send_action("Ping", timeout=self._keepalive_timeout_s)
            except ActionTimeout:
                log.warning("ami.keepalive_timeout", timeout_s=self._keepalive_timeout_s)
                return
            except AMIError as exc:
                log.warning("ami.keepalive_failed", error=str(exc))
                return

    def _read(self, stream: Stream, banner: threading.Event, dead: threading.Event) -> None:
        parser = FrameParser()
        guard = IdentityGuard()
        try:
            while not self._stopping.is_set():
                try:
                    data = stream.recv()
                except TimeoutError:
                    self._verdicts(guard.flush())
                    continue
                if not data:
                    break
                frames = parser.feed(data)
                if parser.version is not None and not banner.is_set():
                    self.version = parser.version
                    banner.set()
                for frame in frames:
                    frame.received_ns = self._clock()
                self._verdicts(guard.feed(frames))
        except OSError as exc:
            log.info("ami.read_failed", error=str(exc))
        finally:
            self._verdicts(guard.flush())
            if parser.garbage_lines:
                log.warning("ami.garbage", lines=parser.garbage_lines)
            dead.set()
            banner.set()  # a connection that died before its banner must not stall the supervisor
            self._connected.clear()
            self._fail_pending()

    def _verdicts(self, verdicts: list[Frame | Quarantined]) -> None:
        for verdict in verdicts:
            if isinstance(verdict, Frame):
                self._dispatch(verdict)
                continue
            log.warning("ami.frame_quarantined", reason=verdict.reason,
                        linkedid=verdict.linkedid, parts=len(verdict.parts))  # fmt: skip
            if self._on_quarantine is not None:
                try:
                    self._on_quarantine(verdict)
                except Exception:
                    log.exception("ami.on_quarantine_failed", reason=verdict.reason)

    def _dispatch(self, frame: Frame) -> None:
        action_id = frame.action_id
        if action_id is not None:
            with self._pending_lock:
                pending = self._pending.get(action_id)
            if pending is not None:
                _complete(pending, frame)
                return
        if frame.event is not None:
            try:
                self._on_event(frame)
            except Exception:
                log.exception(
                    "ami.on_event_failed", event=frame.event, linkedid=frame.get("Linkedid")
                )
        else:
            log.debug("ami.unmatched_response", action_id=action_id, response=frame.response)

    def _fail_pending(self) -> None:
        with self._pending_lock:
            pendings = list(self._pending.values())
        for pending in pendings:
            if not pending.done.is_set():
                pending.lost = True
                pending.done.set()

    def _close_socket(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()


def _complete(pending: _Pending, frame: Frame) -> None:
    """Route a frame carrying our ActionID to its waiter; a list stays open until Complete."""
    if pending.result is None:
        if frame.response is None:
            return
        pending.result = ListResult(frame)
        listing = (frame.get("EventList") or "").lower() == "start"
        if not (pending.collect_list and listing) or frame.response.lower() == "error":
            pending.done.set()
        return
    if (frame.get("EventList") or "").lower() == "complete":
        pending.result.complete = frame
        pending.done.set()
    else:
        pending.result.events.append(frame)
