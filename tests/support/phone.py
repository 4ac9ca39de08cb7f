"""A pjsua2 softphone for integration tests: callers on the trunk, operators on softphones.

pjsua is a process-wide singleton (one Endpoint per process) and crashes when driven from
arbitrary Python threads, so every Phone in the process shares one engine: one Endpoint
owned by one dedicated thread that polls `libHandleEvents` (`threadCnt=0`,
`mainThreadOnly=True`). Public methods post commands to that thread and wait for them with
timeouts. pjsua2 callbacks only record what happened into the handles, under each Phone's
condition variable; tests wait on that. The engine starts with the first Phone and is
destroyed (calls hung up and dropped, accounts and players dropped, `libDestroy`) when the
last Phone closes, or at interpreter exit if a test leaked one.

    with Phone("127.0.0.2", user="+6281234567890") as caller:
        call = caller.call("sip:112@127.0.0.1:5060", headers={"P-Asserted-Identity": "..."})
        call.wait_confirmed(10)
        call.send_dtmf("2")
        call.hangup()
        call.wait_disconnected(5)
"""

from __future__ import annotations

import atexit
import gc
import heapq
import itertools
import os
import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import pjsua2 as pj

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 5.0
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

STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}
# RFC 3261 compact header names, so `headers` of an incoming INVITE has one key per header.
COMPACT_HEADERS = {
    "f": "from", "t": "to", "i": "call-id", "m": "contact", "v": "via", "l": "content-length",
    "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding",
}


class PhoneError(Exception):
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
    """

    play: Path | None = None
    record: Path | None = None


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


def parse_name_addr(value: str) -> tuple[str, str]:
    """(display name, URI) of a From/To/PAI value; the display name unquoted, or ""."""
    match = re.match(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>', value)
    if match:
        quoted, token, uri = match.groups()
        name = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token.strip()
        return name, uri.strip()
    return "", value.split(";", 1)[0].strip()


def parse_sip_message(text: str) -> tuple[str, dict[str, list[str]]]:
    """Start line and headers (lower-case names, compact forms expanded) of a SIP message."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last is not None:
            headers[last][-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        key = COMPACT_HEADERS.get(key, key)
        headers.setdefault(key, []).append(value.strip())
        last = key
    return lines[0].strip(), headers


def uri_host_port(uri: str) -> tuple[str, int | None]:
    """Host and port of a sip: URI (port None when absent)."""
    match = re.search(r"sips?:(?:[^@;>]*@)?(\[[^\]]+\]|[^:;>?\s]+)(?::(\d+))?", uri)
    if not match:
        return "", None
    return match.group(1), int(match.group(2)) if match.group(2) else None


def _scrubbed(exc: BaseException) -> BaseException:
    # Exceptions cross from the engine thread to the caller; their tracebacks reference
    # engine frames whose locals may be pjsua2 objects, which must never be freed outside
    # the engine thread (or after libDestroy).
    exc.__traceback__ = None
    exc.__context__ = None
    exc.__cause__ = None
    return exc


def _pj_text(exc: BaseException) -> str:
    if isinstance(exc, pj.Error):
        return f"pjsua2: {exc.title}: {exc.reason} (status {exc.status})"
    return f"{type(exc).__name__}: {exc}"


class CallHandle:
    """One call, seen from the test: thread-safe, never holds pjsua2 objects.

    The engine thread fills it in; tests read it and wait on it. Times are time.monotonic().
    """

    def __init__(self, phone: Phone, direction: Literal["outgoing", "incoming"]) -> None:
        self._phone = phone
        self._cond = phone._cond
        self.key = next(_keys)
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
        self.from_user = _uri_user(self.from_uri)
        self._invite_at = at

    def header(self, name: str) -> str | None:
        """First value of header `name` in the INVITE (case-insensitive), or None."""
        key = name.lower()
        values = self.headers.get(COMPACT_HEADERS.get(key, key))
        return values[0] if values else None


def _uri_user(uri: str) -> str:
    match = re.match(r"sips?:([^@;>]*)@", uri.strip())
    return match.group(1) if match else ""


_keys = itertools.count(1)


# ---------------------------------------------------------------------------------------
# Engine thread side. Everything below that touches pjsua2 runs on the engine thread only.
# ---------------------------------------------------------------------------------------


def _guarded(method: Callable[..., None]) -> Callable[..., None]:
    """Keep a Python exception from unwinding into pjsip (SWIG would abort the process)."""

    def wrapper(self: Any, *args: Any) -> None:
        try:
            method(self, *args)
        except BaseException as exc:  # anything escaping aborts the process
            _record_error(f"{type(self).__name__}.{method.__name__}: {_pj_text(exc)}")

    wrapper.__name__ = method.__name__
    return wrapper


_callback_errors: list[str] = []
_troubled = threading.Event()


def _record_error(text: str) -> None:
    _callback_errors.append(text)
    _troubled.set()


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(
        self, account: _Account, handle: CallHandle, call_id: int | None = None,
        media: Media | None = None,
    ) -> None:
        if call_id is None:
            super().__init__(account)
        else:
            super().__init__(account, call_id)
        self.line = account.line
        self.handle = handle
        self.media = media
        self.player: Any = None
        self.recorder: Any = None

    @_guarded
    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        now = time.monotonic()
        state = STATE_NAMES.get(info.state, str(info.state))
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            # Before the handle says DISCONNECTED: destroying the recorder completes its file.
            self.line.retire(self.handle.key)
        with self.handle._cond:
            self.handle._set_state(state, info.lastStatusCode, info.lastReason, now)
            self.handle._remote_uri = info.remoteUri
            self.handle._local_uri = info.localUri
            self.handle._sip_call_id = info.callIdString
            self.handle._cond.notify_all()

    @_guarded
    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        active = [
            m.index for m in info.media
            if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE
        ]
        if not active:
            return
        with self.handle._cond:
            if self.handle._media_active_at is None:
                self.handle._media_active_at = time.monotonic()
                self.handle._cond.notify_all()
        if self.media is None:
            return
        audio = self.getAudioMedia(active[0])
        if self.media.play is not None and self.player is None:
            player = pj.AudioMediaPlayer()
            player.createPlayer(str(self.media.play))  # loops until the call ends
            self.player = player
            player.startTransmit(audio)
        if self.media.record is not None and self.recorder is None:
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(str(self.media.record))
            self.recorder = recorder
            audio.startTransmit(recorder)

    @_guarded
    def onDtmfDigit(self, prm: Any) -> None:
        # Runs on pjmedia's worker thread, not the engine thread: record only.
        digit = DtmfDigit(str(prm.digit), time.monotonic())
        with self.handle._cond:
            self.handle._dtmf.append(digit)
            self.handle._cond.notify_all()


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, line: _Line) -> None:
        super().__init__()
        self.line = line

    @_guarded
    def onIncomingCall(self, prm: Any) -> None:
        self.line.incoming(self, prm.callId, prm.rdata.wholeMsg, prm.rdata.srcAddress)

    @_guarded
    def onRegState(self, prm: Any) -> None:
        self.line.phone._on_reg_state(
            RegEvent(int(prm.code), str(prm.reason), int(prm.expiration), time.monotonic())
        )


class _Endpoint(pj.Endpoint):  # type: ignore[misc]
    def __init__(self, engine: _Engine) -> None:
        super().__init__()
        self.engine = engine

    @_guarded
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
        user = _uri_user(start[1])
        for line in self.engine.lines.values():
            if line.security and user and user == line.registered_user and line.default_account:
                prm.accountIndex = line.default_account.getId()
                return


class _Line:
    """Engine-thread state of one Phone: its transport, accounts, live calls."""

    def __init__(self, engine: _Engine, phone: Phone, bind_ip: str, user: str,
                 display_name: str | None, security: Security | None) -> None:
        self.engine = engine
        self.phone = phone
        self.bind_ip = bind_ip
        self.security = security
        self.registered_user = ""
        config = pj.TransportConfig()
        config.port = 0
        config.boundAddress = bind_ip
        # Without it pjsip puts the host's name or first interface into Via and Contact.
        config.publicAddress = bind_ip
        kind = pj.PJSIP_TRANSPORT_UDP
        if security is not None:
            kind = pj.PJSIP_TRANSPORT_TLS
            config.tlsConfig.CaListFile = str(security.ca_file)
            config.tlsConfig.verifyServer = True
        self.transport_id: int = engine.ep.transportCreate(kind, config)
        local = engine.ep.transportGetInfo(self.transport_id).localName
        self.port = int(local.rsplit(":", 1)[1])
        self.accounts: dict[str, _Account] = {}
        self.calls: dict[int, _Call] = {}
        self.default_account: _Account | None = None
        self.default_account = self.account_for(_id_uri(display_name, user, bind_ip))

    def _account_config(self, id_uri: str) -> Any:
        config = pj.AccountConfig()
        config.idUri = id_uri
        config.sipConfig.transportId = self.transport_id
        config.mediaConfig.transportConfig.boundAddress = self.bind_ip
        config.mediaConfig.transportConfig.publicAddress = self.bind_ip
        # Loopback, no NAT: rewriting Contact/Via from received/rport or RFC 5626 outbound
        # only adds re-registrations and instance parameters the tests don't want.
        config.natConfig.sipOutboundUse = 0
        config.natConfig.contactRewriteUse = 0
        config.natConfig.viaRewriteUse = 0
        config.natConfig.sdpNatRewriteUse = 0
        config.natConfig.udpKaIntervalSec = 0
        config.natConfig.iceEnabled = False
        if self.security is not None and self.security.srtp:
            config.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY
            config.mediaConfig.srtpSecureSignaling = 1  # SRTP keys only over TLS
            keyings = pj.IntVector()
            keyings.append(pj.PJMEDIA_SRTP_KEYING_SDES)
            config.mediaConfig.srtpOpt.keyings = keyings
        return config

    @property
    def account(self) -> _Account:
        if self.default_account is None:
            raise PhoneError("the phone is closed")
        return self.default_account

    def account_for(self, id_uri: str) -> _Account:
        account = self.accounts.get(id_uri)
        if account is None:
            account = _Account(self)
            account.create(self._account_config(id_uri), False)
            self.accounts[id_uri] = account
        return account

    def register(self, registrar_uri: str, user: str, password: str, id_uri: str,
                 expires: int) -> None:
        config = self._account_config(id_uri)
        config.regConfig.registrarUri = registrar_uri
        config.regConfig.timeoutSec = expires
        # A failed registration must stay failed: the test asserts on it.
        config.regConfig.retryIntervalSec = 0
        config.regConfig.firstRetryIntervalSec = 0
        config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        old = self.accounts.pop(id_uri, None)
        if old is not None:
            old.shutdown()
        account = _Account(self)
        account.create(config, False)
        self.accounts[id_uri] = account
        self.default_account = account
        self.registered_user = user

    def unregister(self) -> bool:
        """Start un-registering; False if nothing is registered."""
        account = self.account
        if not account.getInfo().regIsActive:
            return False
        account.setRegistration(False)
        return True

    def incoming(self, account: _Account, call_id: int, invite: str, source: str) -> None:
        mode = self.phone._mode
        handle = IncomingCall(self.phone, invite, source, time.monotonic())
        media = None
        if mode.action == "answer":
            record = None
            if mode.record_dir is not None:
                record = mode.record_dir / f"incoming-{handle.key}.wav"
                handle.recording = record
            media = Media(mode.media.play if mode.media else None, record)
        call = _Call(account, handle, call_id, media)
        self.calls[handle.key] = call
        with handle._cond:
            handle._state = "INCOMING"
            handle._state_times["INCOMING"] = handle.created_at
            self.phone._incoming.append(handle)
            handle._cond.notify_all()
        if mode.action == "reject":
            self.answer(handle.key, mode.code, None)
            return
        self.answer(handle.key, 180, None)
        if mode.action == "answer":
            if mode.delay_s <= 0:
                self.answer(handle.key, 200, media)
            else:
                self.engine.schedule(
                    mode.delay_s, lambda: self.answer(handle.key, 200, media, quiet=True)
                )

    def _call(self, key: int) -> _Call:
        call = self.calls.get(key)
        if call is None:
            raise PhoneError("the call has ended")
        return call

    def make_call(self, handle: CallHandle, uri: str, headers: Mapping[str, str],
                  from_uri: str | None, media: Media | None) -> None:
        account = self.account_for(from_uri) if from_uri else self.account
        call = _Call(account, handle, None, media)
        prm = pj.CallOpParam(True)
        vector = pj.SipHeaderVector()
        for name, value in headers.items():
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            vector.append(header)
        prm.txOption.headers = vector
        with handle._cond:
            handle._invite_at = time.monotonic()
        call.makeCall(uri, prm)
        # Kept only once pjsua accepted it; a refused call dies here, on this thread.
        self.calls[handle.key] = call

    def answer(self, key: int, code: int, media: Media | None, quiet: bool = False) -> None:
        call = self.calls.get(key)
        if call is None or not call.isActive():
            if quiet:
                return
            raise PhoneError("the call has ended")
        if media is not None:
            call.media = media
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        call.answer(prm)
        if code == 200:
            with call.handle._cond:
                call.handle._answered_at = time.monotonic()
                call.handle._cond.notify_all()

    def hangup(self, key: int, code: int) -> None:
        call = self.calls.get(key)
        if call is None or not call.isActive():
            return
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        call.hangup(prm)

    def hangup_all(self) -> None:
        for key in list(self.calls):
            try:
                self.hangup(key, 0)
            except pj.Error as exc:
                _record_error(f"hangup during cleanup: {_pj_text(exc)}")

    def send_dtmf(self, key: int, digits: str) -> None:
        self._call(key).dialDtmf(digits)

    def transfer(self, key: int, uri: str) -> None:
        self._call(key).xfer(uri, pj.CallOpParam(True))

    def media_stats(self, key: int) -> MediaStats:
        call = self._call(key)
        # Keep the CallInfo alive: `.media` points into it (SWIG), a temporary would dangle.
        info = call.getInfo()
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO:
                stat = call.getStreamStat(media.index)
                proto = int(call.getStreamInfo(media.index).proto)
                return MediaStats(int(stat.rtcp.txStat.pkt), int(stat.rtcp.rxStat.pkt),
                                  bool(proto & pj.PJMEDIA_TP_PROFILE_SRTP))
        raise PhoneError("the call has no audio stream")

    def retire(self, key: int) -> None:
        # Dropped after the current poll, not inside pjsua's callback that still uses it.
        call = self.calls.pop(key, None)
        if call is not None:
            # Player and recorder are plain conference ports: safe to destroy right here.
            call.player = None
            call.recorder = None
            self.engine.doomed.append(call)

    def close(self) -> None:
        """Drop everything of this line; calls still alive are terminated by pjsua."""
        for key in list(self.calls):
            self.retire(key)
        self.engine.doomed.clear()
        for account in self.accounts.values():
            try:
                account.shutdown()
            except pj.Error as exc:
                _record_error(f"account shutdown: {_pj_text(exc)}")
        self.accounts.clear()
        self.default_account = None
        try:
            self.engine.ep.transportClose(self.transport_id)
        except pj.Error as exc:
            _record_error(f"transport close: {_pj_text(exc)}")
        self.engine.lines.pop(id(self), None)


def _id_uri(display_name: str | None, user: str, host: str) -> str:
    uri = f"sip:{user}@{host}"
    if display_name:
        escaped = display_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{uri}>'
    return uri


class _Engine:
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
        self.lines: dict[int, _Line] = {}
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
            _troubled.set()
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
            self.failure = _pj_text(exc)
            _troubled.set()
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
            self.failure = _pj_text(exc)
            _record_error(f"engine loop: {self.failure}")
        finally:
            self._stop.set()
            self._fail_pending()
            self._destroy_lib()

    def _start_lib(self) -> None:
        self.ep = _Endpoint(self)
        self.ep.libCreate()
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
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        for codec in self.ep.codecEnum2():
            keep = any(codec.codecId.startswith(name) for name in CODECS)
            self.ep.codecSetPriority(codec.codecId, 200 if keep else 0)

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
                future.set_exception(_scrubbed(exc))
            except BaseException as exc:  # handed to the waiting thread
                future.set_exception(PhoneError(_pj_text(exc)))
            else:
                future.set_result(result)

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            try:
                fn()
            except BaseException as exc:  # a timer must not stop the engine
                _record_error(f"timer: {_pj_text(exc)}")

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
            _record_error(f"engine cleanup: {_pj_text(exc)}")
        self.lines.clear()
        self.doomed.clear()
        gc.collect()
        try:
            self.ep.libDestroy()
        except BaseException as exc:
            _record_error(f"libDestroy: {_pj_text(exc)}")
        self.ep = None
        gc.collect()


_engine: _Engine | None = None
_engine_users = 0
# Held while an engine starts or stops: pjsua allows one library per process, so a new
# engine must not start before the old one finished libDestroy.
_engine_lock = threading.Lock()


def _acquire_engine(timeout: float) -> _Engine:
    global _engine, _engine_users
    with _engine_lock:
        if _engine is None or not _engine.thread.is_alive():
            engine = _Engine()
            try:
                engine.start(timeout)
            except PhoneError:
                engine.stop()
                raise
            _engine = engine
            _engine_users = 0
        _engine_users += 1
        return _engine


def _release_engine(engine: _Engine) -> None:
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
    if not _troubled.is_set() and not os.environ.get("PHONE_LOG"):
        LOG_PATH.unlink(missing_ok=True)


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
        self._engine = _acquire_engine(timeout)
        try:
            self._line: _Line = self._engine.run(self._open_line(user, display_name), timeout)
        except BaseException:
            _release_engine(self._engine)
            raise
        self.port = self._line.port

    def _open_line(self, user: str, display_name: str | None) -> Callable[[], _Line]:
        def open_line() -> _Line:
            line = _Line(self._engine, self, self.bind_ip, user, display_name, self.security)
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
        return list(_callback_errors)

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

    def _run(self, fn: Callable[[_Line], T], timeout: float | None = None) -> T:
        if self._closed:
            raise PhoneError(f"{self!r} is closed")
        line = self._line
        return self._engine.run(lambda: fn(line), self.timeout if timeout is None else timeout)

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            if self._cond.wait_for(predicate, timeout):
                return
        _troubled.set()
        errors = "\n".join(_callback_errors[-5:])
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
    ) -> CallHandle:
        """Send an INVITE to `uri` with extra `headers`; returns at once (see wait_confirmed).

        `from_uri` (e.g. 'sip:+6281234567890@127.0.0.2') replaces this phone's identity
        for this call; `play`/`record`: see Media.
        """
        handle = CallHandle(self, "outgoing")
        handle.target_uri = uri
        media = Media(play, record) if play or record else None
        handle.recording = record
        self._run(lambda line: line.make_call(handle, uri, dict(headers or {}), from_uri, media))
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
    ) -> RegEvent:
        """REGISTER as `user` (digest auth) and wait for the final answer.

        Raises RegistrationError with the status code unless it is a 2xx. Afterwards this
        account receives incoming calls and places this phone's calls.
        """
        host, port = uri_host_port(registrar_uri)
        id_uri = f"sip:{user}@{host}" + (f":{port}" if port else "")
        with self._cond:
            seen = len(self._reg_events)
        self._run(lambda line: line.register(registrar_uri, user, password, id_uri, expires))
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
            _release_engine(self._engine)
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
