"""The pjsua2 test phone (tests/support/phone.py) against a real Asterisk.

The trunk caller runs against the session sandbox. Operator endpoints do not exist in our
dialplans yet, so the operator side runs in a throwaway sandbox of this module that adds
one PJSIP endpoint (and a small test context) to the rendered configuration before boot.
"""

from __future__ import annotations

import array
import math
import re
import secrets
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from telephony.pbx.layout import Layout
from telephony.pbx.process import Asterisk
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.render import write_sandbox
from telephony.phone import Phone, RegistrationError
from tests.harness.sandbox import DIRECT, Sandbox, sandbox_config

pytestmark = pytest.mark.asterisk

TRUNK_IP = "127.0.0.2"
OPERATOR_IP = "127.0.0.1"
CALLER_NUMBER = "+6281234567890"
CALLER_NAME = "Ibu Sari"
OPERATOR = "op-test"
OPERATOR_PASSWORD = secrets.token_urlsafe(12)
PANI = "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=5101000010001A2B3C"

# Appended to the throwaway sandbox only; nothing of it reaches dialplans/.
PJSIP_EXTRA = f"""
[{OPERATOR}]
type = endpoint
context = phone-test
disallow = all
allow = ulaw,alaw
direct_media = no
rtp_symmetric = yes
dtmf_mode = rfc4733
auth = {OPERATOR}
aors = {OPERATOR}

[{OPERATOR}]
type = auth
auth_type = userpass
username = {OPERATOR}
password = {OPERATOR_PASSWORD}

[{OPERATOR}]
type = aor
max_contacts = 1
remove_existing = yes
"""
# Calls originated to the operator land here: Asterisk sends digits, then waits for one.
EXTENSIONS_EXTRA = """
[phone-test]
exten => s,1,Wait(0.5)
 same => n,SendDTMF(159)
 same => n,WaitExten(5)
exten => _X,1,Set(GLOBAL(PHONE_TEST_DTMF)=${EXTEN})
 same => n,Hangup()
exten => t,1,Set(GLOBAL(PHONE_TEST_DTMF)=timeout)
 same => n,Hangup()
"""


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)  # for what has no signal of its own (CLI output, files)
    return True


def write_tone(path: Path, hz: float = 440.0, seconds: float = 1.0, rate: int = 8000) -> Path:
    """A 16-bit mono PCM sine tone: what pjsua's player takes."""
    count = int(rate * seconds)
    samples = array.array(
        "h", (int(12000 * math.sin(2 * math.pi * hz * n / rate)) for n in range(count))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def wav_rms(path: Path) -> float:
    with wave.open(str(path), "rb") as src:
        assert src.getsampwidth() == 2, "pjsua records 16-bit PCM"
        samples = array.array("h", src.readframes(src.getnframes()))
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def queue_callers(box: Sandbox, queue: str) -> int:
    out = box.asterisk.cli(f"queue show {queue}")
    match = re.search(r"has (\d+) calls?", out)
    assert match, out
    return int(match.group(1))


def channel_caller_ids(box: Sandbox) -> list[str]:
    """Caller ID numbers of Asterisk's channels (`core show channels concise`, field 8)."""
    out = box.asterisk.cli("core show channels concise")
    return [line.split("!")[7] for line in out.splitlines() if line.count("!") >= 7]


def test_trunk_caller_is_answered_queued_and_hangs_up(no_leaks: Sandbox) -> None:
    queue = no_leaks.config.ivr.default_queue
    with Phone(TRUNK_IP, user="caller") as phone:
        call = phone.call(
            f"sip:112@{no_leaks.sip_target}",
            headers={
                "P-Asserted-Identity": f"<sip:{CALLER_NUMBER}@{TRUNK_IP}>",
                "P-Access-Network-Info": PANI,
            },
        )
        call.wait_confirmed(10)
        call.send_dtmf("2")
        assert wait_until(lambda: queue_callers(no_leaks, queue) == 1, 10), no_leaks.asterisk.cli(
            f"queue show {queue}"
        )
        # trust_id_inbound: the caller is who the network asserts, not the From user.
        assert CALLER_NUMBER in channel_caller_ids(no_leaks)
        call.hangup()
        call.wait_disconnected(5)
        assert call.last_status_code == 200
        assert wait_until(lambda: queue_callers(no_leaks, queue) == 0, 5)
    assert call.invite_at is not None and call.answered_at is not None
    assert call.confirmed_at is not None and call.disconnected_at is not None
    assert call.invite_at <= call.answered_at <= call.confirmed_at <= call.disconnected_at
    assert phone.callback_errors == []


# ---- operator side, in a throwaway sandbox ----


@pytest.fixture(scope="module")
def operator_box(
    asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("phone-sandbox")
    # Asterisk with test endpoints of its own, phones only: no edge in front.
    config = sandbox_config(root, *DIRECT)
    layout = Layout(Path(config.asterisk.runtime_dir))
    write_sandbox(config, asterisk_install, layout)
    (layout.etc / "pjsip_phone_test.conf").write_text(PJSIP_EXTRA)
    (layout.etc / "extensions_phone_test.conf").write_text(EXTENSIONS_EXTRA)
    appended = {
        "pjsip.conf": "#include pjsip_phone_test.conf",
        "extensions.conf": "#include extensions_phone_test.conf",
        # `channel originate` places calls to the operator without a caller.
        "modules.conf": "load => res_clioriginate.so",
    }
    for name, line in appended.items():
        with (layout.etc / name).open("a") as fh:
            fh.write(f"\n{line}\n")
    asterisk = Asterisk(asterisk_install, layout)
    try:
        asterisk.start(config.asterisk.boot_timeout_s)
        yield Sandbox(config, asterisk, root)
    finally:
        asterisk.stop()


@pytest.fixture
def box(operator_box: Sandbox) -> Iterator[Sandbox]:
    yield operator_box
    left = operator_box.wait_no_channels()
    channels = operator_box.asterisk.cli("core show channels")
    assert left == 0, f"{left} channel(s) leaked:\n{channels}"


def registered_operator(box: Sandbox) -> Phone:
    phone = Phone(OPERATOR_IP, user=OPERATOR)
    try:
        phone.register(f"sip:{box.phone_target}", OPERATOR, OPERATOR_PASSWORD, timeout=5)
    except BaseException:
        phone.close()
        raise
    return phone


def test_wrong_password_is_refused(box: Sandbox) -> None:
    with Phone(OPERATOR_IP, user=OPERATOR) as phone:
        with pytest.raises(RegistrationError) as refused:
            phone.register(f"sip:{box.phone_target}", OPERATOR, "wrong", timeout=5)
        assert refused.value.status_code in (401, 403)
        assert not phone.registered


def test_operator_registers_answers_and_exchanges_dtmf(box: Sandbox) -> None:
    box.asterisk.cli("dialplan set global PHONE_TEST_DTMF none")
    with registered_operator(box) as phone:
        assert phone.registered
        contacts = box.asterisk.cli(f"pjsip show contacts like {OPERATOR}")
        assert f"{OPERATOR_IP}:{phone.port}" in contacts, contacts
        phone.auto_answer(0.3)
        box.asterisk.cli(f"channel originate PJSIP/{OPERATOR} extension s@phone-test")
        incoming = phone.wait_incoming(5)
        assert incoming.request_uri.startswith(f"sip:{OPERATOR}@{OPERATOR_IP}:{phone.port}")
        incoming.wait_confirmed(5)
        assert incoming.invite_at is not None and incoming.answered_at is not None
        assert incoming.answered_at - incoming.invite_at >= 0.3
        assert incoming.wait_dtmf(3, timeout=5) == "159"
        incoming.send_dtmf("2")
        incoming.wait_disconnected(10)  # the test context hangs up on the digit
    globals_ = box.asterisk.cli("dialplan show globals")
    assert "PHONE_TEST_DTMF=2" in globals_, globals_
    contacts = box.asterisk.cli(f"pjsip show contacts like {OPERATOR}")
    assert f"{OPERATOR_IP}:{phone.port}" not in contacts, "the phone did not un-register"


def test_busy_operator_refuses_with_486(box: Sandbox) -> None:
    with registered_operator(box) as phone:
        phone.busy()
        box.asterisk.cli(f"channel originate PJSIP/{OPERATOR} application Wait 1")
        incoming = phone.wait_incoming(5)
        incoming.wait_disconnected(5)
        assert incoming.last_status_code == 486
        assert incoming.confirmed_at is None


def test_trunk_caller_reaches_operator_through_queue(box: Sandbox, tmp_path: Path) -> None:
    queue = box.config.ivr.default_queue
    caller_uri = f"sip:{CALLER_NUMBER}@{TRUNK_IP}"
    tone = write_tone(tmp_path / "tone.wav")
    with registered_operator(box) as operator, Phone(TRUNK_IP, user="caller") as caller:
        operator.auto_answer(0.2, record_dir=tmp_path)
        box.asterisk.cli(f"queue add member PJSIP/{OPERATOR} to {queue}")
        try:
            call = caller.call(
                f"sip:112@{box.sip_target}",
                headers={"P-Asserted-Identity": f'"{CALLER_NAME}" <{caller_uri}>'},
                play=tone,
            )
            call.wait_confirmed(10)
            incoming = operator.wait_incoming(15)
            # The screen pop: type tag, regency (the province here: the service is not
            # running, so the call failed open) and the asserted number, not the trunk's From.
            assert incoming.from_display_name == f"112 35 {CALLER_NUMBER}"
            assert incoming.from_user == CALLER_NUMBER
            incoming.wait_confirmed(5)
            call.send_dtmf("2")
            assert incoming.wait_dtmf(1, timeout=5) == "2"
            time.sleep(1.0)  # let the operator hear the caller's tone: a duration
            call.hangup()
            incoming.wait_disconnected(5)
        finally:
            box.asterisk.cli(f"queue remove member PJSIP/{OPERATOR} from {queue}")
    # The caller's audio crossed Asterisk's bridge (a silent stream records as ~0).
    assert incoming.recording is not None
    assert wav_rms(incoming.recording) > 1000


def test_leaving_the_block_hangs_up_calls(box: Sandbox) -> None:
    with pytest.raises(RuntimeError, match="test failed mid-call"):  # noqa: SIM117
        with Phone(TRUNK_IP, user="caller") as caller:
            caller.call(f"sip:112@{box.sip_target}").wait_confirmed(10)
            assert box.asterisk.channel_count() == 1
            raise RuntimeError("test failed mid-call")
    assert box.wait_no_channels(5) == 0
