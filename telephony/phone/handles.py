"""What a phone's user sees of its calls: thread-safe handles, never pjsua2 objects."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from telephony.errors import TelephonyError
from telephony.phone.sip import COMPACT_HEADERS, parse_name_addr, parse_sip_message, uri_user

if TYPE_CHECKING:
    from telephony.phone.phone import Phone

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 5.0


class PhoneError(TelephonyError):
    """The phone could not do what was asked (pjsua2 refused, or the engine is gone)."""


class PhoneTimeout(PhoneError, TimeoutError):
    """Something the test waited for did not happen in time."""


class CallFailed(PhoneError):
    """The call ended before it was confirmed."""

    def __init__(self, message: str, status_code: int | None, reason: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason


class RegistrationError(PhoneError):
    """The registrar did not answer REGISTER with a 2xx."""

    def __init__(self, message: str, status_code: int | None, reason: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason


@dataclass(frozen=True)
class DtmfDigit:
    digit: str
    at: float  # time.monotonic()


@dataclass(frozen=True)
class MediaStats:
    tx_packets: int
    rx_packets: int
    srtp: bool = False  # the stream's negotiated profile is RTP/SAVP (encrypted)


@dataclass(frozen=True)
class RegEvent:
    code: int
    reason: str
    expiration: int
    at: float


@dataclass(frozen=True)
class Media:
    """Audio for a call once its media is up.

    `play`: a 16-bit mono PCM WAV played into the call in a loop. `record`: a WAV file the
    audio received from the far end is written to; complete once the call is DISCONNECTED.
    `capture`: the capture device (silence, with the null device) feeds the call for its
    whole length; without a source pjsua2 stops sending RTP, and RFC 4733 keys with it,
    after about 0.6 s.
    """

    play: Path | None = None
    record: Path | None = None
    capture: bool = False


@dataclass(frozen=True)
class BodyPart:
    """One part of a multipart/mixed INVITE body beside the SDP, e.g. a PIDF-LO."""

    content_type: str  # "application/pidf+xml"
    body: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Security:
    """An operator's phone over TLS (the server verified against `ca_file`), and with
    `srtp` its audio only as SDES-SRTP: a call without it fails (pjsua answers 488)."""

    ca_file: Path
    srtp: bool = True


@dataclass(frozen=True)
class IncomingMode:
    """What a Phone does with an incoming INVITE; see Phone.auto_answer/busy/reject/ring."""

    action: Literal["ring", "answer", "reject"]
    code: int = 180
    delay_s: float = 0.0
    media: Media | None = None
    record_dir: Path | None = None



class CallHandle:
    """One call, seen from the test: thread-safe, never holds pjsua2 objects.

    The engine thread fills it in; tests read it and wait on it. Times are time.monotonic().
    """

    def __init__(self, phone: Phone, direction: Literal["outgoing", "incoming"]) -> None:
        self._phone = phone
        self._cond = phone._cond
        self.key = next(keys)
        self.direction = direction
        self.created_at = time.monotonic()
        self.target_uri = ""
        self.recording: Path | None = None  # where Media.record writes this call's audio
        self._state = "NULL"
        self._status_code: int | None = None
        self._reason = ""
        self._state_times: dict[str, float] = {}
        self._dtmf: list[DtmfDigit] = []
        self._remote_uri = ""
        self._local_uri = ""
        self._sip_call_id = ""
        self._invite_at: float | None = None
        self._answered_at: float | None = None
        self._media_active_at: float | None = None

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.direction} {self.target_uri or self.remote_uri} "
            f"{self.state} {self.last_status_code}>"
        )

    # ---- read side (any thread) ----

    def _read(self, get: Callable[[], T]) -> T:
        with self._cond:
            return get()

    @property
    def state(self) -> str:
        """pjsip invite state: CALLING, INCOMING, EARLY, CONNECTING, CONFIRMED, DISCONNECTED."""
        return self._read(lambda: self._state)

    @property
    def last_status_code(self) -> int | None:
        return self._read(lambda: self._status_code)

    @property
    def last_reason(self) -> str:
        return self._read(lambda: self._reason)

    @property
    def state_times(self) -> dict[str, float]:
        """When each state was first entered."""
        return self._read(lambda: dict(self._state_times))

    @property
    def remote_uri(self) -> str:
        return self._read(lambda: self._remote_uri)

    @property
    def local_uri(self) -> str:
        return self._read(lambda: self._local_uri)

    @property
    def sip_call_id(self) -> str:
        return self._read(lambda: self._sip_call_id)

    @property
    def invite_at(self) -> float | None:
        """When the INVITE was sent (outgoing) or arrived (incoming)."""
        return self._read(lambda: self._invite_at)

    @property
    def answered_at(self) -> float | None:
        """When the 200 to INVITE was received (outgoing) or sent (incoming)."""
        return self._read(lambda: self._answered_at)

    @property
    def confirmed_at(self) -> float | None:
        return self._read(lambda: self._state_times.get("CONFIRMED"))

    @property
    def disconnected_at(self) -> float | None:
        return self._read(lambda: self._state_times.get("DISCONNECTED"))

    @property
    def media_active_at(self) -> float | None:
        return self._read(lambda: self._media_active_at)

    @property
    def dtmf_received(self) -> list[DtmfDigit]:
        return self._read(lambda: list(self._dtmf))

    @property
    def digits(self) -> str:
        return self._read(lambda: "".join(d.digit for d in self._dtmf))

    # ---- waiting ----

    def wait_confirmed(self, timeout: float = DEFAULT_TIMEOUT_S) -> CallHandle:
        """Wait for CONFIRMED; raise CallFailed if the call ends first."""

        def done() -> bool:
            return "CONFIRMED" in self._state_times or self._state == "DISCONNECTED"

        self._phone._wait(done, timeout, f"{self!r} to be confirmed")
        with self._cond:
            if "CONFIRMED" not in self._state_times:
                raise CallFailed(
                    f"{self!r} ended before it was confirmed: "
                    f"{self._status_code} {self._reason}",
                    self._status_code,
                    self._reason,
                )
        return self

    def wait_state(self, state: str, timeout: float = DEFAULT_TIMEOUT_S) -> CallHandle:
        """Wait until the call has been in `state` (or is in it now)."""
        self._phone._wait(
            lambda: state in self._state_times, timeout, f"{self!r} to reach {state}"
        )
        return self

    def wait_disconnected(self, timeout: float = DEFAULT_TIMEOUT_S) -> CallHandle:
        self._phone._wait(
            lambda: self._state == "DISCONNECTED", timeout, f"{self!r} to disconnect"
        )
        return self

    def wait_media(self, timeout: float = DEFAULT_TIMEOUT_S) -> CallHandle:
        self._phone._wait(
            lambda: self._media_active_at is not None, timeout, f"{self!r} media to start"
        )
        return self

    def wait_dtmf(self, count: int = 1, timeout: float = DEFAULT_TIMEOUT_S) -> str:
        """Wait until `count` digits were received; return all digits received so far."""
        self._phone._wait(
            lambda: len(self._dtmf) >= count, timeout, f"{count} DTMF digit(s) on {self!r}"
        )
        return self.digits

    # ---- actions (posted to the engine thread) ----

    def send_dtmf(self, digits: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Send digits as RFC 4733 events (queued; they go out over the next ~200 ms each)."""
        self._phone._run(lambda line: line.send_dtmf(self.key, digits), timeout)

    def transfer(self, uri: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Blind transfer (REFER) of the far end to `uri`, as an operator's softphone does."""
        self._phone._run(lambda line: line.transfer(self.key, uri), timeout)

    def hangup(self, code: int = 0, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """BYE, CANCEL or a final response (`code`, else pjsua's default) as the state needs.

        A call that already ended is left alone.
        """
        self._phone._run(lambda line: line.hangup(self.key, code), timeout)

    def answer(
        self,
        code: int = 200,
        *,
        play: Path | None = None,
        record: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        """Respond to an incoming call (180, 183, 200 or a final error); see Media."""
        media = Media(play, record) if play or record else None
        if record is not None:
            self.recording = record
        self._phone._run(lambda line: line.answer(self.key, code, media), timeout)

    def media_stats(self, timeout: float = DEFAULT_TIMEOUT_S) -> MediaStats:
        """RTP packets sent and received on the call's audio stream so far."""
        return self._phone._run(lambda line: line.media_stats(self.key), timeout)

    # ---- engine side (called with the condition held) ----

    def _set_state(self, state: str, code: int | None, reason: str, at: float) -> None:
        self._state = state
        self._state_times.setdefault(state, at)
        if code:
            self._status_code = code
            self._reason = reason
        if state == "CONNECTING" and self.direction == "outgoing" and self._answered_at is None:
            self._answered_at = at


class IncomingCall(CallHandle):
    """An INVITE that reached the phone, with what a screen pop would show."""

    def __init__(self, phone: Phone, invite: str, source: str, at: float) -> None:
        super().__init__(phone, "incoming")
        start, headers = parse_sip_message(invite)
        self.invite = invite
        self.source = source
        self.request_uri = start.split()[1] if len(start.split()) > 1 else ""
        self.headers = headers
        from_value = headers.get("from", [""])[0]
        self.from_display_name, self.from_uri = parse_name_addr(from_value)
        self.from_user = uri_user(self.from_uri)
        self._invite_at = at

    def header(self, name: str) -> str | None:
        """First value of header `name` in the INVITE (case-insensitive), or None."""
        key = name.lower()
        values = self.headers.get(COMPACT_HEADERS.get(key, key))
        return values[0] if values else None



keys = itertools.count(1)
