"""The one pjsua2 Endpoint of the process and the thread that owns it.

pjsua is a process-wide singleton and crashes when driven from arbitrary Python threads:
one dedicated thread polls `libHandleEvents` (`threadCnt=0`, `mainThreadOnly=True`), every
command is posted to it, and it hangs up and drops every call before `libDestroy`.
"""

from __future__ import annotations

import atexit
import gc
import heapq
import itertools
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pjsua2 as pj

from telephony.phone.callbacks import guarded, pj_text, record_error, scrubbed, troubled
from telephony.phone.handles import PhoneError, PhoneTimeout
from telephony.phone.line import Line
from telephony.phone.sip import uri_host_port, uri_user

T = TypeVar("T")

# How long one libHandleEvents waits for network events; it bounds how long a posted
# command waits before the engine thread picks it up.
POLL_MS = 5
SHUTDOWN_TIMEOUT_S = 15.0
LOG_TAIL_LINES = 40
# pjsua's log (SIP messages included) goes here, one file per process; it is removed at
# exit unless something went wrong (a timeout, a callback error) or PHONE_LOG names it.
LOG_PATH = Path(
    os.environ.get("PHONE_LOG") or Path(tempfile.gettempdir()) / f"pjsua2-phone-{os.getpid()}.log"
)
# Offer only what the 112 trunk and operator endpoints allow, so codec negotiation (and
# any transcoding in Asterisk) is the same on every machine.
CODECS = ("PCMU/8000", "PCMA/8000")


class SipEndpoint(pj.Endpoint):  # type: ignore[misc]
    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine

    @guarded
    def onSelectAccount(self, prm: Any) -> None:
        # Several phones share the endpoint; an INVITE belongs to the phone whose transport
        # it was addressed to (the Request-URI is the Contact that phone registered or sent).
        start = prm.rdata.wholeMsg.split("\r\n", 1)[0].split()
        if len(start) < 2:
            return
        host, port = uri_host_port(start[1])
        for line in self.engine.lines.values():
            if port == line.port and host in (line.bind_ip, "") and line.default_account:
                prm.accountIndex = line.default_account.getId()
                return
        # Over TLS the registrar rewrites the Contact to the port of the phone's own
        # connection, not its listener: the registered user tells the phones apart.
        user = uri_user(start[1])
        for line in self.engine.lines.values():
            if line.security and user and user == line.registered_user and line.default_account:
                prm.accountIndex = line.default_account.getId()
                return




@contextmanager
def _stdout_into(path: Path) -> Iterator[None]:
    """pjlib writes to stdout until libInit applies its log settings: into our log instead,
    so that the stdout of a command (test-call --json) holds only what it prints."""
    sys.stdout.flush()
    saved = os.dup(1)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class Engine:
    """The one pjsua2 Endpoint of the process and the thread that owns it."""

    def __init__(self) -> None:
        self.log_path = LOG_PATH
        self._commands: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._stop = threading.Event()
        self._ready: Future[None] = Future()
        self.failure: str | None = None
        # Engine thread only:
        self.ep: Any = None
        self.lines: dict[int, Line] = {}
        self.doomed: list[Any] = []
        self.thread = threading.Thread(target=self._main, name="pjsua2-engine", daemon=True)

    # ---- any thread ----

    def start(self, timeout: float) -> None:
        self.thread.start()
        try:
            self._ready.result(timeout)
        except TimeoutError:
            raise PhoneTimeout(f"pjsua2 did not start within {timeout}s") from None

    def run(self, fn: Callable[[], T], timeout: float) -> T:
        """Run `fn` on the engine thread and return its result."""
        if threading.current_thread() is self.thread:
            return fn()
        if not self.thread.is_alive() or self._stop.is_set():
            raise PhoneError(f"the pjsua2 engine is not running ({self.failure or 'stopped'})")
        future: Future[T] = Future()
        self._commands.put((fn, future))
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            troubled.set()
            raise PhoneTimeout(f"the pjsua2 engine did not answer within {timeout}s") from None

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        self._stop.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)
            if self.thread.is_alive():
                raise PhoneError(f"the pjsua2 engine did not shut down within {timeout}s")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ---- engine thread ----

    def schedule(self, delay_s: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._timer_seq), fn))

    def _main(self) -> None:
        try:
            self._start_lib()
        except BaseException as exc:  # reported to the starting thread
            self.failure = pj_text(exc)
            troubled.set()
            self._destroy_lib()
            self._ready.set_exception(PhoneError(f"pjsua2 did not start: {self.failure}"))
            return
        self._ready.set_result(None)
        try:
            while not self._stop.is_set():
                self._run_commands()
                self._run_timers()
                self.ep.libHandleEvents(self._poll_ms())
                self.doomed.clear()
        except BaseException as exc:  # the engine must still clean up
            self.failure = pj_text(exc)
            record_error(f"engine loop: {self.failure}")
        finally:
            self._stop.set()
            self._fail_pending()
            self._destroy_lib()

    def _start_lib(self) -> None:
        self.ep = SipEndpoint(self)
        with _stdout_into(self.log_path):
            self.ep.libCreate()
            self._init_lib()
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        for codec in self.ep.codecEnum2():
            keep = any(codec.codecId.startswith(name) for name in CODECS)
            self.ep.codecSetPriority(codec.codecId, 200 if keep else 0)

    def _init_lib(self) -> None:
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.userAgent = "telephony-test-phone"
        config.uaConfig.maxCalls = 32
        config.logConfig.level = 5
        config.logConfig.consoleLevel = 0
        config.logConfig.msgLogging = True
        config.logConfig.filename = str(self.log_path)
        # Later engines of the same process add to the file rather than replace it.
        config.logConfig.fileFlags = pj.PJ_O_APPEND
        config.medConfig.ecTailLen = 0
        config.medConfig.noVad = True
        self.ep.libInit(config)


    def _poll_ms(self) -> int:
        if not self._timers:
            return POLL_MS
        due = self._timers[0][0] - time.monotonic()
        return max(0, min(POLL_MS, int(due * 1000)))

    def _run_commands(self) -> None:
        while True:
            try:
                fn, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except PhoneError as exc:
                future.set_exception(scrubbed(exc))
            except BaseException as exc:  # handed to the waiting thread
                future.set_exception(PhoneError(pj_text(exc)))
            else:
                future.set_result(result)

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            try:
                fn()
            except BaseException as exc:  # a timer must not stop the engine
                record_error(f"timer: {pj_text(exc)}")

    def _fail_pending(self) -> None:
        while True:
            try:
                _, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(PhoneError("the pjsua2 engine stopped"))

    def _destroy_lib(self) -> None:
        """Hang up, drop every pjsua2 object, then libDestroy, all on this thread."""
        self._timers.clear()
        if self.ep is None:
            return
        try:
            lines = list(self.lines.values())
            for line in lines:
                line.hangup_all()
            deadline = time.monotonic() + 3.0
            while any(line.calls for line in lines) and time.monotonic() < deadline:
                self.ep.libHandleEvents(10)
                self.doomed.clear()
            for line in lines:
                line.close()
        except BaseException as exc:  # destroy regardless
            record_error(f"engine cleanup: {pj_text(exc)}")
        self.lines.clear()
        self.doomed.clear()
        gc.collect()
        try:
            self.ep.libDestroy()
        except BaseException as exc:
            record_error(f"libDestroy: {pj_text(exc)}")
        self.ep = None
        gc.collect()


_engine: Engine | None = None
_engine_users = 0
# Held while an engine starts or stops: pjsua allows one library per process, so a new
# engine must not start before the old one finished libDestroy.
_engine_lock = threading.Lock()


def acquire_engine(timeout: float) -> Engine:
    global _engine, _engine_users
    with _engine_lock:
        if _engine is None or not _engine.thread.is_alive():
            engine = Engine()
            try:
                engine.start(timeout)
            except PhoneError:
                engine.stop()
                raise
            _engine = engine
            _engine_users = 0
        _engine_users += 1
        return _engine


def release_engine(engine: Engine) -> None:
    global _engine, _engine_users
    with _engine_lock:
        if engine is not _engine:
            return
        _engine_users -= 1
        if _engine_users > 0:
            return
        _engine = None
        engine.stop()


@atexit.register
def _stop_engine_at_exit() -> None:
    # pjsua still running while the interpreter finalises aborts the process.
    global _engine
    with _engine_lock:
        engine, _engine = _engine, None
        if engine is not None:
            engine.stop()
    if not troubled.is_set() and not os.environ.get("PHONE_LOG"):
        LOG_PATH.unlink(missing_ok=True)

