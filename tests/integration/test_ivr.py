"""The 112 IVR on a real Asterisk: DTMF from a pjsua2 caller, budgets, and failing open."""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from telephony.control import Watcher, watching
from telephony.phone import CallHandle, Phone
from tests.harness.sandbox import Sandbox
from tests.harness.service import ServeProcess

pytestmark = pytest.mark.asterisk

SILENT_BUDGET_S = 12.0
KEY_BUDGET_S = 2.0
_numbers = itertools.count(1)


def caller_number() -> str:
    """A distinct asserted number per call, to pick the call's events out of AMI."""
    return f"+62812{next(_numbers):07d}"


def started_service(sandbox: Sandbox, log: Path) -> ServeProcess:
    proc = ServeProcess(sandbox.config, log)
    proc.wait_ready()
    return proc


@pytest.fixture
def service(no_leaks: Sandbox, tmp_path: Path) -> Iterator[ServeProcess]:
    proc = started_service(no_leaks, tmp_path / "serve.log")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def ami(no_leaks: Sandbox) -> Iterator[Watcher]:
    with watching(no_leaks.config) as watcher:
        yield watcher


def dial(sandbox: Sandbox, phone: Phone, number: str, service: str = "112") -> CallHandle:
    uri = f"sip:{service}@{sandbox.sip_target}"
    pai = f"<sip:{number}@{sandbox.config.asterisk.trunk_address};user=phone>"
    return phone.call(uri, headers={"P-Asserted-Identity": pai})


def queued(ami: Watcher, number: str, timeout: float = 20.0) -> tuple[float, dict[str, str]]:
    """When the caller joined a queue (AMI arrival time) and what the dialplan queued it as."""
    join = ami.wait_for(
        "QueueCallerJoin", lambda f: f.get("CallerIDNum") == number, timeout=timeout
    )
    linkedid = join.frame.get("Linkedid")
    event = ami.wait_for(
        "UserEvent",
        lambda f: f.get("UserEvent") == "CallQueued" and f.get("Linkedid") == linkedid,
        timeout=5,
    )
    fields = {k: v for k, v in event.frame.fields}
    return join.at, fields


def test_dtmf_2_during_welcome_reaches_the_queue_as_medical_within_2s(
    no_leaks: Sandbox, service: ServeProcess, ami: Watcher
) -> None:
    number = caller_number()
    with Phone("127.0.0.2") as phone:
        call = dial(no_leaks, phone, number)
        call.wait_confirmed(10)
        # Into the welcome prompt: the key must barge in. Nothing signals where a prompt
        # is; a time into it is what a caller does.
        time.sleep(0.8)
        pressed = time.monotonic()
        call.send_dtmf("2")
        joined, fields = queued(ami, number)
        call.hangup()
        call.wait_disconnected(10)
    assert fields["EmergencyType"] == "medical"
    assert fields["Priority"] == "20"
    assert fields["Queue"] == no_leaks.config.ivr.default_queue
    assert joined - pressed <= KEY_BUDGET_S, f"queued {joined - pressed:.2f}s after the key"
    print(f"key caller queued {joined - pressed:.2f}s after the key")
    choice = ami.wait_for("UserEvent", lambda f: f.get("UserEvent") == "IVRChoice"
                          and f.get("EmergencyType") == "medical")
    assert choice.frame.get("Source") == "dtmf"


def test_silent_caller_is_queued_within_budget(
    no_leaks: Sandbox, service: ServeProcess, ami: Watcher
) -> None:
    number = caller_number()
    with Phone("127.0.0.2") as phone:
        call = dial(no_leaks, phone, number)
        call.wait_confirmed(10)
        answered = call.confirmed_at
        joined, fields = queued(ami, number)
        call.hangup()
        call.wait_disconnected(10)
    assert answered is not None
    assert fields["EmergencyType"] == "unknown"
    assert joined - answered <= SILENT_BUDGET_S, f"queued {joined - answered:.2f}s after answer"
    print(f"silent caller queued {joined - answered:.2f}s after answer")
    assert not [
        f for f in ami.for_call(fields["Linkedid"]) if f.get("UserEvent") == "IVRFailOpen"
    ], "the silent caller was queued by the fail-open path, not by the IVR"


def test_nine_switches_to_english_then_3_is_fire(
    no_leaks: Sandbox, service: ServeProcess, ami: Watcher
) -> None:
    number = caller_number()
    with Phone("127.0.0.2") as phone:
        call = dial(no_leaks, phone, number)
        call.wait_confirmed(10)
        # Nothing signals where a prompt is: times into the welcome, then the English menu.
        time.sleep(0.5)
        call.send_dtmf("9")
        time.sleep(1.0)
        call.send_dtmf("3")
        _, fields = queued(ami, number)
        call.hangup()
        call.wait_disconnected(10)
    assert fields["Language"] == "en"
    assert fields["EmergencyType"] == "fire"


@pytest.mark.parametrize(("service_number", "expected"), [("118", "medical"), ("110", "police")])
def test_direct_dial_presets_the_type_and_skips_the_menu(
    no_leaks: Sandbox, service: ServeProcess, ami: Watcher, service_number: str, expected: str
) -> None:
    number = caller_number()
    with Phone("127.0.0.2") as phone:
        call = dial(no_leaks, phone, number, service=service_number)
        call.wait_confirmed(10)
        answered = call.confirmed_at
        joined, fields = queued(ami, number)
        call.hangup()
        call.wait_disconnected(10)
    assert answered is not None
    assert fields["EmergencyType"] == expected
    # Only the welcome plays (under 3 s): no menu and no wait for a key.
    assert joined - answered < 4.0


def fails_open(
    sandbox: Sandbox, ami: Watcher, number: str, budget: float
) -> tuple[float, dict[str, str]]:
    with Phone("127.0.0.2") as phone:
        call = dial(sandbox, phone, number)
        call.wait_confirmed(10)
        answered = call.confirmed_at
        assert answered is not None
        joined, fields = queued(ami, number, timeout=budget + 5)
        call.hangup()
        call.wait_disconnected(10)
    assert fields["EmergencyType"] == "unknown"
    assert fields["Queue"] == sandbox.config.ivr.default_queue
    return joined - answered, fields


def test_service_down_call_still_reaches_the_default_queue(
    no_leaks: Sandbox, ami: Watcher
) -> None:
    waited, _ = fails_open(no_leaks, ami, caller_number(), budget=3.0)
    assert waited <= 3.0, f"{waited:.2f}s to the queue with the service down"
    print(f"service down: queued {waited:.2f}s after answer")
    fail = ami.wait_for("UserEvent", lambda f: f.get("UserEvent") == "IVRFailOpen")
    assert fail.frame.get("AGIStatus") == "FAILURE"


def test_service_stalled_mid_call_fails_open_on_the_dialplan_guard(
    no_leaks: Sandbox, ami: Watcher, tmp_path: Path
) -> None:
    proc = started_service(no_leaks, tmp_path / "serve.log")
    number = caller_number()
    guard = no_leaks.config.agi.dialplan_guard_s
    try:
        with Phone("127.0.0.2") as phone:
            call = dial(no_leaks, phone, number)
            call.wait_confirmed(10)
            answered = call.confirmed_at
            assert answered is not None
            time.sleep(1.0)  # into the IVR (nothing signals a prompt's progress)
            proc.signal(signal.SIGSTOP)
            joined, fields = queued(ami, number, timeout=guard + 5)
            call.hangup()
            call.wait_disconnected(10)
    finally:
        proc.stop()
    assert fields["EmergencyType"] == "unknown"
    waited = joined - answered
    assert guard - 0.5 <= waited <= guard + 1.5, f"{waited:.2f}s to the queue when stalled"
    print(f"service stalled: queued {waited:.2f}s after answer")


def test_service_killed_mid_call_fails_open_at_once(
    no_leaks: Sandbox, ami: Watcher, tmp_path: Path
) -> None:
    proc = started_service(no_leaks, tmp_path / "serve.log")
    number = caller_number()
    try:
        with Phone("127.0.0.2") as phone:
            call = dial(no_leaks, phone, number)
            call.wait_confirmed(10)
            time.sleep(1.0)  # into the IVR (nothing signals a prompt's progress)
            killed = time.monotonic()
            proc.signal(signal.SIGKILL)
            joined, fields = queued(ami, number, timeout=10)
            call.hangup()
            call.wait_disconnected(10)
    finally:
        proc.stop()
    assert fields["EmergencyType"] == "unknown"
    assert joined - killed <= 2.0, f"{joined - killed:.2f}s to the queue after the kill"
    print(f"service killed: queued {joined - killed:.2f}s after the kill")
