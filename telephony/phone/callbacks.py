"""pjsua2's callback classes for calls and accounts, and what went wrong inside callbacks.

Everything here that touches pjsua2 runs on the engine thread only (see engine.py), except
onDtmfDigit, which pjmedia calls from its own thread and which only records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from telephony.phone.handles import CallHandle, DtmfDigit, Media, RegEvent

if TYPE_CHECKING:
    from telephony.phone.line import Line

STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}


def scrubbed(exc: BaseException) -> BaseException:
    # Exceptions cross from the engine thread to the caller; their tracebacks reference
    # engine frames whose locals may be pjsua2 objects, which must never be freed outside
    # the engine thread (or after libDestroy).
    exc.__traceback__ = None
    exc.__context__ = None
    exc.__cause__ = None
    return exc


def pj_text(exc: BaseException) -> str:
    if isinstance(exc, pj.Error):
        return f"pjsua2: {exc.title}: {exc.reason} (status {exc.status})"
    return f"{type(exc).__name__}: {exc}"



def guarded(method: Callable[..., None]) -> Callable[..., None]:
    """Keep a Python exception from unwinding into pjsip (SWIG would abort the process)."""

    def wrapper(self: Any, *args: Any) -> None:
        try:
            method(self, *args)
        except BaseException as exc:  # anything escaping aborts the process
            record_error(f"{type(self).__name__}.{method.__name__}: {pj_text(exc)}")

    wrapper.__name__ = method.__name__
    return wrapper


callback_errors: list[str] = []
troubled = threading.Event()


def record_error(text: str) -> None:
    callback_errors.append(text)
    troubled.set()


class SipCall(pj.Call):  # type: ignore[misc]
    def __init__(
        self, account: SipAccount, handle: CallHandle, call_id: int | None = None,
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
        self.capturing = False

    @guarded
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

    @guarded
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
        if self.media.capture and not self.capturing:
            devices = pj.Endpoint.instance().audDevManager()
            devices.getCaptureDevMedia().startTransmit(audio)
            self.capturing = True
        if self.media.record is not None and self.recorder is None:
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(str(self.media.record))
            self.recorder = recorder
            audio.startTransmit(recorder)

    @guarded
    def onDtmfDigit(self, prm: Any) -> None:
        # Runs on pjmedia's worker thread, not the engine thread: record only.
        digit = DtmfDigit(str(prm.digit), time.monotonic())
        with self.handle._cond:
            self.handle._dtmf.append(digit)
            self.handle._cond.notify_all()


class SipAccount(pj.Account):  # type: ignore[misc]
    def __init__(self, line: Line) -> None:
        super().__init__()
        self.line = line

    @guarded
    def onIncomingCall(self, prm: Any) -> None:
        self.line.incoming(self, prm.callId, prm.rdata.wholeMsg, prm.rdata.srcAddress)

    @guarded
    def onRegState(self, prm: Any) -> None:
        self.line.phone._on_reg_state(
            RegEvent(int(prm.code), str(prm.reason), int(prm.expiration), time.monotonic())
        )


