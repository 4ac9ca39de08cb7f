"""Engine-thread state of one phone: its transport, accounts and live calls."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from telephony.phone.callbacks import SipAccount, SipCall, pj_text, record_error
from telephony.phone.handles import (
    BodyPart,
    CallHandle,
    IncomingCall,
    Media,
    MediaStats,
    PhoneError,
    Security,
)
from telephony.phone.sip import id_uri

if TYPE_CHECKING:
    from telephony.phone.engine import Engine
    from telephony.phone.phone import Phone


def _headers(items: Iterable[tuple[str, str]]) -> Any:
    vector = pj.SipHeaderVector()
    for name, value in items:
        header = pj.SipHeader()
        header.hName = name
        header.hValue = value
        vector.append(header)
    return vector


def _media_type(text: str) -> Any:
    kind = pj.SipMediaType()
    kind.type, _, kind.subType = text.partition("/")
    return kind


class Line:
    """Engine-thread state of one Phone: its transport, accounts, live calls."""

    def __init__(self, engine: Engine, phone: Phone, bind_ip: str, user: str,
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
        self.accounts: dict[str, SipAccount] = {}
        self.calls: dict[int, SipCall] = {}
        self.default_account: SipAccount | None = None
        self.default_account = self.account_for(id_uri(display_name, user, bind_ip))

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
    def account(self) -> SipAccount:
        if self.default_account is None:
            raise PhoneError("the phone is closed")
        return self.default_account

    def account_for(self, id_uri: str) -> SipAccount:
        account = self.accounts.get(id_uri)
        if account is None:
            account = SipAccount(self)
            account.create(self._account_config(id_uri), False)
            self.accounts[id_uri] = account
        return account

    def register(self, registrar_uri: str, user: str, password: str, id_uri: str,
                 expires: int, contact: str | None = None) -> None:
        config = self._account_config(id_uri)
        if contact is not None:
            # What a phone behind NAT writes: an address its peers cannot reach it at.
            config.sipConfig.contactForced = contact
        config.regConfig.registrarUri = registrar_uri
        config.regConfig.timeoutSec = expires
        # A failed registration must stay failed: the test asserts on it.
        config.regConfig.retryIntervalSec = 0
        config.regConfig.firstRetryIntervalSec = 0
        config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        old = self.accounts.pop(id_uri, None)
        if old is not None:
            old.shutdown()
        account = SipAccount(self)
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

    def incoming(self, account: SipAccount, call_id: int, invite: str, source: str) -> None:
        mode = self.phone._mode
        handle = IncomingCall(self.phone, invite, source, time.monotonic())
        media = None
        if mode.action == "answer":
            record = None
            if mode.record_dir is not None:
                record = mode.record_dir / f"incoming-{handle.key}.wav"
                handle.recording = record
            media = Media(mode.media.play if mode.media else None, record)
        call = SipCall(account, handle, call_id, media)
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

    def _call(self, key: int) -> SipCall:
        call = self.calls.get(key)
        if call is None:
            raise PhoneError("the call has ended")
        return call

    def make_call(self, handle: CallHandle, uri: str, headers: Mapping[str, str],
                  from_uri: str | None, media: Media | None,
                  parts: tuple[BodyPart, ...] = ()) -> None:
        account = self.account_for(from_uri) if from_uri else self.account
        call = SipCall(account, handle, None, media)
        prm = pj.CallOpParam(True)
        prm.txOption.headers = _headers(headers.items())
        if parts:
            # pjsua makes the SDP the first part of the multipart/mixed body.
            prm.txOption.multipartContentType = _media_type("multipart/mixed")
            vector = pj.SipMultipartPartVector()
            for part in parts:
                item = pj.SipMultipartPart()
                item.headers = _headers(part.headers)
                item.contentType = _media_type(part.content_type)
                item.body = part.body
                vector.append(item)
            prm.txOption.multipartParts = vector
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
                record_error(f"hangup during cleanup: {pj_text(exc)}")

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
                record_error(f"account shutdown: {pj_text(exc)}")
        self.accounts.clear()
        self.default_account = None
        try:
            self.engine.ep.transportClose(self.transport_id)
        except pj.Error as exc:
            record_error(f"transport close: {pj_text(exc)}")
        self.engine.lines.pop(id(self), None)


