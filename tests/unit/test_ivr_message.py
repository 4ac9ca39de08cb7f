"""The IVR's major-incident message step, over a real FastAGI socket with a fake Asterisk."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from telephony.agi import IVR, RouteDecision
from telephony.agi.announce import Announcement
from telephony.contract import Var
from tests.harness.agi import FakeAsterisk, Transcript, serving, thread_errors

PROMPTS = Path(__file__).resolve().parents[2] / "ivr_prompts"
QUEUE = "prov-35"
MESSAGE = Announcement(7, "/srv/messages/message-abc", 3.0)


class Bromo:
    """The messages serve would hold: one, for 35.13."""

    def __init__(self, message: Announcement = MESSAGE) -> None:
        self.message = message

    def active(self) -> bool:
        return True

    def covering(self, regency_code: str, lat: float | None,
                 lon: float | None) -> Announcement | None:
        return self.message if regency_code == "35.13" else None


class Cell:
    def __init__(self, regency: str) -> None:
        self.regency = regency

    def route(self, session_vars: Mapping[str, str], emergency_type: str) -> RouteDecision:
        return RouteDecision("reg-" + self.regency.replace(".", ""),
                             {Var.REGENCY_CODE: self.regency})


def _run(regency: str, keys: dict[str, str] | None = None,
         message: Announcement = MESSAGE) -> Transcript:
    ivr = IVR(PROMPTS, Cell(regency), fallback_queue=QUEUE, announcements=Bromo(message))
    with thread_errors() as errors, serving({"ivr": ivr}) as server:
        transcript = FakeAsterisk(server.address, keys=keys).run()
    assert errors == []
    return transcript


def test_a_caller_in_the_area_hears_it_after_the_welcome_and_it_is_audited() -> None:
    t = _run("35.13")
    assert t.played[:2] == ["id/welcome", "messages/message-abc"]
    assert "MessagePlayed,MessageId: 7,Seconds: 3.00" in t.events
    assert t.variables["IVR_STATUS"] == "OK" and t.variables["TARGET_QUEUE"] == "reg-3513"


def test_a_key_during_it_skips_it_and_is_the_menu_choice() -> None:
    t = _run("35.13", keys={"messages/message-abc": "2"})
    assert t.played == ["id/welcome", "messages/message-abc"]
    assert "MessageSkipped,MessageId: 7,Digit: 2" in t.events
    assert t.variables["EMERGENCY_TYPE"] == "medical"


def test_a_key_during_the_welcome_skips_the_message_too() -> None:
    t = _run("35.13", keys={"id/welcome": "1"})
    assert t.played == ["id/welcome"]
    assert t.variables["EMERGENCY_TYPE"] == "police"


def test_a_caller_outside_the_area_does_not_hear_it() -> None:
    t = _run("35.78")
    assert t.played[:2] == ["id/welcome", "id/menu"]
    assert not [e for e in t.events if e.startswith("Message")]


def test_a_message_that_would_end_after_the_deadline_is_not_played() -> None:
    t = _run("35.13", message=Announcement(8, "/srv/messages/message-long", 30.0))
    assert "messages/message-long" not in t.played
    assert t.variables["IVR_STATUS"] == "OK"
