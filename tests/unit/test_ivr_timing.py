"""The IVR's time budget: silent callers queued by the deadline, key presses queued fast.

Real prompts take ~10 s for a silent caller, so the timeline tests use prompts scaled
down tenfold and a fake Asterisk that takes as long to play them as a real one would.
"""

from __future__ import annotations

import inspect
import time
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from telephony.agi import IVR, DefaultRouter, FastAGIServer
from telephony.agi.ivr import LANGUAGES, PROMPTS, ROUTER_GRACE
from tests.harness.agi import FakeAsterisk, serving, split_args

REAL_PROMPTS = Path(__file__).resolve().parents[2] / "ivr_prompts"
SCALE = 10
QUEUE_DEADLINE = 12.0  # requirement: a silent caller is queued within 12 s of the answer


def duration(wav: Path) -> float:
    with wave.open(str(wav), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def default(function: Callable[..., object], name: str) -> float:
    value = inspect.signature(function).parameters[name].default
    assert isinstance(value, float)
    return value


@pytest.fixture
def scaled_prompts(tmp_path: Path) -> Path:
    for language in LANGUAGES:
        (tmp_path / language).mkdir()
        for prompt in PROMPTS:
            frames = int(duration(REAL_PROMPTS / language / f"{prompt}.wav") * 8000 / SCALE)
            with wave.open(str(tmp_path / language / f"{prompt}.wav"), "wb") as audio:
                audio.setparams((1, 2, 8000, frames, "NONE", "not compressed"))
                audio.writeframes(b"\0\0" * frames)
    return tmp_path


class RealTimePlayback:
    """Hook that plays prompts and waits for digits in real time; can press a key."""

    def __init__(self, prompts: Path, press: tuple[str, float, str] | None = None) -> None:
        self._prompts = prompts
        self._press = press  # (prompt, seconds into it, key)
        self.pressed_at: float | None = None

    def __call__(self, line: str) -> str | None:
        args = split_args(line)
        if line.startswith("STREAM FILE"):
            played = "/".join(args[2].split("/")[-2:])
            length = duration(self._prompts / f"{played}.wav")
            if self._press and self._press[0] == played and self.pressed_at is None:
                time.sleep(self._press[1])
                self.pressed_at = time.monotonic()
                return f"200 result={ord(self._press[2])} endpos=1\n"
            time.sleep(length)
        elif line.startswith("WAIT FOR DIGIT"):
            time.sleep(int(args[3]) / 1000)
        return None


def test_silent_caller_is_queued_by_the_deadline(scaled_prompts: Path) -> None:
    deadline = 10.5 / SCALE
    handler = IVR(scaled_prompts, DefaultRouter("q"), fallback_queue="q",
                  deadline=deadline, digit_timeout=3.0 / SCALE)
    with serving({"ivr": handler}) as server:
        t = FakeAsterisk(server.address, hook=RealTimePlayback(scaled_prompts)).run()

    assert t.variables["IVR_STATUS"] == "OK"
    assert t.played[:2] == ["id/welcome", "id/menu"]
    assert t.seconds <= deadline + 0.15


def test_key_during_welcome_is_queued_within_two_seconds(scaled_prompts: Path) -> None:
    playback = RealTimePlayback(scaled_prompts, press=("id/welcome", 0.05, "2"))
    handler = IVR(scaled_prompts, DefaultRouter("q"), fallback_queue="q",
                  deadline=10.5 / SCALE, router_timeout=1.5 / SCALE)
    with serving({"ivr": handler}) as server:
        t = FakeAsterisk(server.address, hook=playback).run()
        queued = time.monotonic()

    assert playback.pressed_at is not None
    assert t.variables["EMERGENCY_TYPE"] == "medical"
    # Nothing is played after the key: only the router is waited for.
    assert queued - playback.pressed_at <= 0.15


def test_real_prompts_leave_time_to_answer_the_menu() -> None:
    deadline = default(IVR.__init__, "deadline")
    welcome_and_menu = sum(duration(REAL_PROMPTS / "id" / f"{p}.wav") for p in ("welcome", "menu"))

    # A silent caller still gets at least 2 s to press a key after the menu.
    assert deadline - welcome_and_menu >= 2.0


def test_watchdog_backs_up_the_ivr_deadline_within_the_requirement() -> None:
    ivr_done = default(IVR.__init__, "deadline") + ROUTER_GRACE
    watchdog = default(FastAGIServer.__init__, "session_budget")

    assert ivr_done < watchdog < QUEUE_DEADLINE
    assert default(IVR.__init__, "router_timeout") <= 1.5
