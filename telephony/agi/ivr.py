"""The 112 IVR (AGI script "ivr"): welcome, emergency-type menu, routing, dialplan variables.

Dialplan contract: AGI(agi://127.0.0.1:4573/ivr,${PRESET_TYPE}), where agi_arg_1 is empty
for 112 or police/medical/fire/sar/disaster for a direct-dial number (no menu then).
On return the channel has EMERGENCY_TYPE, IVR_LANGUAGE, QUEUE_PRIORITY, SCREEN_TAG,
TARGET_QUEUE, the router's variables, and IVR_STATUS=OK set last. IVR_STATUS unset or
FAILED means the IVR did not finish: the dialplan must then fail open to its default queue.

Time budget, measured from the moment Asterisk connects (right after the answer):
- the IVR returns by `deadline` (10.5 s): a prompt that would end later is not played and
  the post-menu wait is shortened, so a silent caller is queued after at most deadline +
  ROUTER_GRACE, about 10.8 s. The server's watchdog (11 s) is the backstop; the
  requirement is 12 s.
- after a key the IVR only waits for the router (at most router_timeout, 1.5 s; a few
  milliseconds in practice) and returns: the caller is queued at once and hears
  `connecting` as the first entry of the queue's waiting playlist (musiconhold_112.conf).
- a major-incident message for the caller's area (announce.py) is one more barge-in prompt
  right after the welcome, under the same deadline; messages.max_seconds keeps it short.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from telephony.agi import announce
from telephony.agi.announce import Announcements
from telephony.agi.channel import Channel
from telephony.agi.prompts import PromptSet
from telephony.agi.router import QUEUE_NAME, PendingRoute, Router
from telephony.agi.server import STATUS_VARIABLE, Session
from telephony.contract import UserEvent, Var

log = structlog.get_logger(__name__)

EMERGENCY_TYPES = {"1": "police", "2": "medical", "3": "fire", "4": "sar", "5": "disaster"}
UNKNOWN = "unknown"
# QUEUE_PRIO for Queue(): higher is answered first among callers waiting in the same
# queue. Callers who report a medical emergency or a fire go ahead; everyone else,
# including silent callers (who may be unable to speak), is equal.
QUEUE_PRIORITIES = {
    "police": 10,
    "medical": 20,
    "fire": 20,
    "sar": 10,
    "disaster": 10,
    UNKNOWN: 10,
}
# The short tag an operator's phone shows before the regency and number (screen-pop).
SCREEN_TAGS = {
    "police": "POL",
    "medical": "AMB",
    "fire": "DAMKAR",
    "sar": "SAR",
    "disaster": "BENCANA",
    UNKNOWN: "112",
}
ENGLISH_KEY = "9"
ESCAPE_DIGITS = "0123456789*#"
# One re-prompt after an invalid key; the second invalid key goes straight to an operator.
MAX_INVALID_KEYS = 2
# Even at the deadline, a router that answers this fast is waited for, so that silent
# callers still get located.
ROUTER_GRACE = 0.25
# `connecting` is not played here but by the queue; it is checked so a missing file shows
# at start-up, not as silence in a caller's ear.
PROMPTS = ("welcome", "menu", "invalid", "connecting")
LANGUAGES = ("id", "en")
CALL_VARIABLES = {
    "P-Asserted-Identity": "${PJSIP_HEADER(read,P-Asserted-Identity)}",
    "Remote-Party-ID": "${PJSIP_HEADER(read,Remote-Party-ID)}",
    "From": "${PJSIP_HEADER(read,From)}",
    "Privacy": "${PJSIP_HEADER(read,Privacy)}",
    "P-Access-Network-Info": "${PJSIP_HEADER(read,P-Access-Network-Info)}",
    "Geolocation": "${PJSIP_HEADER(read,Geolocation)}",
    "location_info": "${GEOLOC_PROFILE(location_info)}",
    # Set by the trunk's endpoint (pjsip_112.conf): may its cells steer routing?
    "trunk_trusted": "${TRUNK_TRUSTED}",
}

_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class Choice:
    """What the caller chose; source is dtmf, preset, silence, invalid or deadline."""

    emergency_type: str
    language: str
    digit: str
    source: str


class _OutOfTime(Exception):
    """The next prompt would end after the IVR's deadline."""


class IVR:
    """Route handler for the "ivr" script; see the module docstring for the contract."""

    def __init__(
        self,
        prompts_dir: str | os.PathLike[str],
        router: Router,
        *,
        fallback_queue: str,
        digit_timeout: float = 3.0,
        deadline: float = 10.5,
        router_timeout: float = 1.5,
        announcements: Announcements | None = None,
    ) -> None:
        if not QUEUE_NAME.fullmatch(fallback_queue):
            raise ValueError(f"unusable fallback queue name: {fallback_queue!r}")
        self._prompts = PromptSet(prompts_dir, PROMPTS, LANGUAGES)
        self._router = router
        self._fallback_queue = fallback_queue
        self._digit_timeout = digit_timeout
        self._deadline = deadline
        self._router_timeout = router_timeout
        self._announcements = announcements

    def __call__(self, session: Session) -> None:
        deadline = session.started + self._deadline
        preset = session.args[0].strip().lower() if session.args else ""
        # The welcome is the first command: res_agi reads and drops a key that arrives
        # between commands, so a caller who presses at once must already be in a prompt
        # that listens for it. The SIP headers are only needed once the choice is made.
        key = ""
        with contextlib.suppress(_OutOfTime):
            key = self._play(session, deadline, "id", "welcome")
        call_vars = self._read_call_vars(session)
        if not key and self._announcements is not None:
            with contextlib.suppress(_OutOfTime):
                key = self._announce(session, deadline, call_vars, self._announcements)
        if preset in EMERGENCY_TYPES.values():
            choice = Choice(preset, "id", "", "preset")
        else:
            if preset:
                log.warning("ivr.unknown_preset", preset=preset)
            choice = self._menu(session, deadline, key)
        self._finish(session, choice, call_vars, deadline)

    def _read_call_vars(self, session: Session) -> dict[str, str]:
        # One GET FULL VARIABLE for all of them rather than one each (8 round trips to
        # Asterisk, each a wait for a core under load). A header holding the separator (a
        # control character) would shift the values: the count then comes out wrong and
        # they are read one by one instead.
        joined = session.channel.get(_SEPARATOR.join(CALL_VARIABLES.values()))
        parts = joined.split(_SEPARATOR)
        if len(parts) == len(CALL_VARIABLES):
            values = dict(zip(CALL_VARIABLES, parts, strict=True))
        else:
            values = {name: session.channel.get(expr) for name, expr in CALL_VARIABLES.items()}
        values.update(
            linkedid=session.linkedid,
            uniqueid=session.uniqueid,
            callerid=session.env.get("agi_callerid", ""),
            channel=session.env.get("agi_channel", ""),
        )
        return values

    def _announce(self, session: Session, deadline: float, call_vars: Mapping[str, str],
                  source: Announcements) -> str:
        """A major-incident message for the caller's area, once, after the welcome.

        Like the welcome it listens for keys: a key cuts it short and is the caller's menu
        choice. It is never started if it would end after the deadline; a message longer
        than the time left for the menu leaves the menu out (the caller is queued as
        unknown at once), which messages.max_seconds bounds.
        """
        found = announce.find(source, self._router, call_vars, self._fallback_queue,
                              min(time.monotonic() + self._router_timeout, deadline))
        if found is None:
            return ""
        if time.monotonic() + found.seconds > deadline:
            raise _OutOfTime(f"message {found.message_id}")
        announce.audit(session.channel, UserEvent.MESSAGE_PLAYED, found,
                       Seconds=f"{found.seconds:.2f}")
        key = session.channel.play(found.sound, ESCAPE_DIGITS)
        if key:
            announce.audit(session.channel, UserEvent.MESSAGE_SKIPPED, found, Digit=key)
        log.info("ivr.message", message_id=found.message_id, skipped_with=key or None)
        return key

    def _menu(self, session: Session, deadline: float, key: str) -> Choice:
        """The menu after the welcome, which ``key`` (if any) cut short."""
        language = "id"
        invalid_keys = 0
        try:
            while True:
                if not key:
                    key = self._play(session, deadline, language, "menu")
                if not key:
                    key = self._wait(session, deadline)
                if not key:
                    return Choice(UNKNOWN, language, "", "silence")
                if key in EMERGENCY_TYPES:
                    return Choice(EMERGENCY_TYPES[key], language, key, "dtmf")
                if key == ENGLISH_KEY and language == "id":
                    language, key = "en", ""
                    continue
                invalid_keys += 1
                log.info("ivr.invalid_key", key=key, count=invalid_keys)
                if invalid_keys >= MAX_INVALID_KEYS:
                    return Choice(UNKNOWN, language, key, "invalid")
                key = self._play(session, deadline, language, "invalid")
        except _OutOfTime as exc:
            log.info("ivr.deadline_reached", skipped=str(exc))
            return Choice(UNKNOWN, language, "", "deadline")

    def _play(
        self, session: Session, deadline: float, language: str, prompt: str, barge_in: bool = True
    ) -> str:
        if time.monotonic() + self._prompts.duration(language, prompt) > deadline:
            raise _OutOfTime(f"{language}/{prompt}")
        path = self._prompts.path(language, prompt)
        return session.channel.play(path, ESCAPE_DIGITS if barge_in else "")

    def _wait(self, session: Session, deadline: float) -> str:
        seconds = min(self._digit_timeout, deadline - time.monotonic())
        return session.channel.wait_for_digit(seconds) if seconds > 0 else ""

    def _finish(
        self, session: Session, choice: Choice, call_vars: Mapping[str, str], deadline: float
    ) -> None:
        channel = session.channel
        pending = PendingRoute(self._router, call_vars, choice.emergency_type, self._fallback_queue)
        _audit(channel, choice)
        not_after = max(
            min(pending.started + self._router_timeout, deadline),
            pending.started + ROUTER_GRACE,
        )
        decision = pending.result(not_after)
        # Nothing reads these before the IVR returns, so they go in one batch after the
        # routing answer; IVR_STATUS stays a command of its own, last, because the dialplan
        # takes its presence to mean that everything before it was set.
        channel.set_all([
            (Var.EMERGENCY_TYPE, choice.emergency_type),
            (Var.IVR_LANGUAGE, choice.language),
            (Var.QUEUE_PRIORITY, str(QUEUE_PRIORITIES[choice.emergency_type])),
            (Var.SCREEN_TAG, SCREEN_TAGS[choice.emergency_type]),
            (Var.TARGET_QUEUE, decision.target_queue),
            *decision.channel_vars.items(),
        ])
        channel.set(STATUS_VARIABLE, "OK")
        log.info(
            "ivr.finished",
            emergency_type=choice.emergency_type,
            language=choice.language,
            digit=choice.digit,
            source=choice.source,
            target_queue=decision.target_queue,
            seconds=round(time.monotonic() - session.started, 3),
        )


def _audit(channel: Channel, choice: Choice) -> None:
    """Send the choice to AMI as UserEvent IVRChoice for the audit trail."""
    body = (
        f"{UserEvent.IVR_CHOICE},Digit: {choice.digit},EmergencyType: {choice.emergency_type},"
        f"Language: {choice.language},Source: {choice.source}"
    )
    if channel.exec("UserEvent", body) == "-2":
        log.error("ivr.choice_not_audited")
