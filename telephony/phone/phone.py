"""One SIP user agent: a caller, an operator's softphone, or both."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from telephony.phone.callbacks import callback_errors, troubled
from telephony.phone.engine import acquire_engine, release_engine
from telephony.phone.handles import (
    DEFAULT_TIMEOUT_S,
    BodyPart,
    CallHandle,
    IncomingCall,
    IncomingMode,
    Media,
    PhoneError,
    PhoneTimeout,
    RegEvent,
    RegistrationError,
    Security,
)
from telephony.phone.line import Line
from telephony.phone.sip import uri_host_port

T = TypeVar("T")


class Phone:
    """One SIP user agent on its own UDP port: a caller, an operator's softphone, or both.
    With `security`, its transport is TLS instead (register at `sip:host:port;transport=tls`).

    Use as a context manager; leaving it hangs up this phone's calls, un-registers, and
    (for the last open phone) destroys the pjsua2 library, also when the test failed.
    """

    def __init__(
        self,
        bind_ip: str = "127.0.0.1",
        *,
        user: str = "phone",
        display_name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        security: Security | None = None,
    ) -> None:
        self.bind_ip = bind_ip
        self.security = security
        self.user = user
        self.timeout = timeout
        self._cond = threading.Condition()
        self._calls: list[CallHandle] = []
        self._incoming: list[IncomingCall] = []
        self._incoming_taken = 0
        self._reg_events: list[RegEvent] = []
        self._registered = False
        self._mode = IncomingMode("ring")
        self._closed = False
        self._engine = acquire_engine(timeout)
        try:
            self._line: Line = self._engine.run(self._open_line(user, display_name), timeout)
        except BaseException:
            release_engine(self._engine)
            raise
        self.port = self._line.port

    def _open_line(self, user: str, display_name: str | None) -> Callable[[], Line]:
        def open_line() -> Line:
            line = Line(self._engine, self, self.bind_ip, user, display_name, self.security)
            self._engine.lines[id(line)] = line
            return line

        return open_line

    def __repr__(self) -> str:
        return f"<Phone {self.user}@{self.address}>"

    @property
    def address(self) -> str:
        """host:port of this phone's SIP transport."""
        return f"{self.bind_ip}:{self.port}"

    @property
    def log_path(self) -> Path:
        """pjsua's log (SIP messages included), shared by all phones of the engine."""
        return self._engine.log_path

    @property
    def callback_errors(self) -> list[str]:
        """Exceptions raised inside pjsua2 callbacks (kept out of pjsip, so not raised)."""
        return list(callback_errors)

    @property
    def calls(self) -> list[CallHandle]:
        with self._cond:
            return list(self._calls)

    @property
    def incoming(self) -> list[IncomingCall]:
        with self._cond:
            return list(self._incoming)

    @property
    def registered(self) -> bool:
        with self._cond:
            return self._registered

    # ---- plumbing ----

    def _run(self, fn: Callable[[Line], T], timeout: float | None = None) -> T:
        if self._closed:
            raise PhoneError(f"{self!r} is closed")
        line = self._line
        return self._engine.run(lambda: fn(line), self.timeout if timeout is None else timeout)

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            if self._cond.wait_for(predicate, timeout):
                return
        troubled.set()
        errors = "\n".join(callback_errors[-5:])
        raise PhoneTimeout(
            f"timed out after {timeout}s waiting for {what}"
            + (f"\ncallback errors:\n{errors}" if errors else "")
            + f"\npjsua log ({self.log_path}), last lines:\n{self._engine.log_tail()}"
        )

    def _on_reg_state(self, event: RegEvent) -> None:
        with self._cond:
            self._reg_events.append(event)
            self._registered = 200 <= event.code < 300 and event.expiration > 0
            self._cond.notify_all()

    # ---- caller ----

    def call(
        self,
        uri: str,
        headers: Mapping[str, str] | None = None,
        *,
        from_uri: str | None = None,
        play: Path | None = None,
        record: Path | None = None,
        capture: bool = False,
        parts: Sequence[BodyPart] = (),
    ) -> CallHandle:
        """Send an INVITE to `uri` with extra `headers`; returns at once (see wait_confirmed).

        `from_uri` (e.g. 'sip:+6281234567890@127.0.0.2') replaces this phone's identity
        for this call; `play`/`record`/`capture`: see Media; `parts`: a multipart/mixed
        body of the SDP and these.
        """
        handle = CallHandle(self, "outgoing")
        handle.target_uri = uri
        media = Media(play, record, capture) if play or record or capture else None
        handle.recording = record
        self._run(lambda line: line.make_call(
            handle, uri, dict(headers or {}), from_uri, media, tuple(parts)
        ))
        with self._cond:
            self._calls.append(handle)
        return handle

    # ---- operator ----

    def register(
        self,
        registrar_uri: str,
        user: str,
        password: str,
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        expires: int = 300,
        contact: str | None = None,
    ) -> RegEvent:
        """REGISTER as `user` (digest auth) and wait for the final answer.

        Raises RegistrationError with the status code unless it is a 2xx. Afterwards this
        account receives incoming calls and places this phone's calls. `contact` replaces
        the Contact of its REGISTER and calls (a phone behind NAT, e.g. '<sip:op@10.0.0.9>').
        """
        host, port = uri_host_port(registrar_uri)
        id_uri = f"sip:{user}@{host}" + (f":{port}" if port else "")
        with self._cond:
            seen = len(self._reg_events)
        self._run(lambda line: line.register(registrar_uri, user, password, id_uri, expires,
                                             contact))
        self._wait(lambda: len(self._reg_events) > seen, timeout, f"REGISTER of {user}")
        with self._cond:
            event = self._reg_events[seen]
        if not (200 <= event.code < 300 and event.expiration > 0):
            raise RegistrationError(
                f"REGISTER of {user} at {registrar_uri} answered {event.code} {event.reason}",
                event.code,
                event.reason,
            )
        return event

    def unregister(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        with self._cond:
            seen = len(self._reg_events)
        if self._run(lambda line: line.unregister()):
            self._wait(lambda: len(self._reg_events) > seen, timeout, "un-REGISTER")

    def auto_answer(
        self, delay_s: float = 0.0, *, play: Path | None = None, record_dir: Path | None = None
    ) -> None:
        """Ring (180), then answer incoming calls with 200 after `delay_s` seconds.

        `play`: see Media. `record_dir`: each answered call is recorded to
        `<record_dir>/incoming-<n>.wav` (IncomingCall.recording).
        """
        self._mode = IncomingMode("answer", 200, delay_s, Media(play, None), record_dir)

    def busy(self) -> None:
        """Refuse incoming calls with 486 Busy Here."""
        self.reject(486)

    def reject(self, code: int = 603) -> None:
        """Refuse incoming calls with final response `code`."""
        if not 300 <= code < 700:
            raise ValueError(f"a rejection needs a final error code, not {code}")
        self._mode = IncomingMode("reject", code)

    def ring(self) -> None:
        """Answer incoming calls with 180 only; the test decides (IncomingCall.answer)."""
        self._mode = IncomingMode("ring")

    def wait_incoming(self, timeout: float = DEFAULT_TIMEOUT_S) -> IncomingCall:
        """The next incoming call not yet returned by wait_incoming, in arrival order."""
        self._wait(lambda: len(self._incoming) > self._incoming_taken, timeout, "an INVITE")
        with self._cond:
            call = self._incoming[self._incoming_taken]
            self._incoming_taken += 1
            return call

    # ---- cleanup ----

    def hangup_all(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Hang up this phone's calls and wait until all of them ended."""
        self._run(lambda line: line.hangup_all())
        with self._cond:
            handles = [*self._calls, *self._incoming]
        self._wait(
            lambda: all(h._state == "DISCONNECTED" or not h._state_times for h in handles),
            timeout,
            "this phone's calls to end",
        )

    def close(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Hang up, un-register, drop this phone's pjsua2 objects; idempotent."""
        if self._closed:
            return
        errors: list[str] = []
        try:
            for step in (self.hangup_all, self._unregister_quietly):
                try:
                    step(timeout)
                except PhoneError as exc:
                    errors.append(str(exc).split("\n", 1)[0])
            try:
                self._run(lambda line: line.close(), timeout)
            except PhoneError as exc:
                errors.append(str(exc))
        finally:
            self._closed = True
            release_engine(self._engine)
        if errors:
            raise PhoneError(f"{self!r} did not close cleanly: " + "; ".join(errors))

    def _unregister_quietly(self, timeout: float) -> None:
        if self.registered:
            self.unregister(timeout)

    def __enter__(self) -> Phone:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except PhoneError:
            # Cleanup trouble must not hide the failure that brought us here.
            if exc_type is None:
                raise
