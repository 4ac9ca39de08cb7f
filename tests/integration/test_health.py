"""/healthz and /metrics of a real `telephony serve` against a real Asterisk."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from telephony.control import watching
from telephony.pbx.provision import AsteriskInstall
from telephony.phone import Phone
from tests.harness.sandbox import Sandbox, start_sandbox, wait_contact
from tests.harness.service import ServeProcess, run_cli
from tests.harness.sipp import SippResult, run_scenario

pytestmark = pytest.mark.asterisk

WAIT_S = 20.0


@pytest.fixture
def box(asterisk_install: AsteriskInstall, tmp_path: Path) -> Iterator[Sandbox]:
    # Our own Asterisk (a test rewrites its AMI user), with one operator in Kota Malang.
    roster = tmp_path / "operators.toml"
    roster.write_text('[[operator]]\nid = "a1"\nregency = "35.73"\npassword = "secret-a1"\n')
    sandbox = start_sandbox(asterisk_install, tmp_path, f"operators.file={roster}")
    try:
        yield sandbox
    finally:
        sandbox.stop()


def logged(proc: ServeProcess, event: str, count: int = 1) -> None:
    """Wait until the service has logged `event` `count` times."""
    proc.wait_for(event, WAIT_S, after=count - 1)


@pytest.fixture
def service(box: Sandbox, tmp_path: Path) -> Iterator[ServeProcess]:
    proc = ServeProcess(box.config, tmp_path / "serve.log")
    try:
        proc.wait_ready()
        logged(proc, "ami.connected")
        yield proc
    finally:
        assert proc.stop() == 0


def fetch(box: Sandbox, path: str) -> tuple[int, str]:
    url = f"http://{box.config.health.bind}:{box.config.health.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(box: Sandbox) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = fetch(box, "/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric(box: Sandbox, name: str, **labels: str) -> float:
    return samples(box).get((name, tuple(sorted(labels.items()))), 0.0)


def eventually(what: str, predicate: Callable[[], bool]) -> None:
    """The service sees AMI events a moment after the test's own session does."""
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)  # what the service counts has no signal of its own: poll /metrics


def kick_service_session(box: Sandbox, username: str) -> None:
    table = box.asterisk.cli("manager show connected")
    fds = [row.split()[4] for row in table.splitlines() if row.split()[:1] == [username]]
    assert len(fds) == 1, table
    box.asterisk.cli(f"manager kick session {fds[0]}")


def test_healthz_is_503_while_ami_is_cut_and_200_after_the_reconnect(
    box: Sandbox, service: ServeProcess
) -> None:
    status, body = fetch(box, "/healthz")
    assert status == 200, body
    # Cut AMI from outside and keep it cut: another secret, then kick the live session, so
    # the service's logins fail until the secret is back.
    manager = box.layout.etc / "manager_112.conf"
    original = manager.read_text()
    cut = re.sub(r"^secret = .*$", "secret = not-the-service-s", original, count=1, flags=re.M)
    assert cut != original
    manager.write_text(cut)
    box.asterisk.cli("manager reload")
    kick_service_session(box, box.config.ami.username)
    logged(service, "ami.login_failed")
    status, body = fetch(box, "/healthz")
    assert status == 503
    report = json.loads(body)
    assert report["status"] == "degraded"
    assert {name for name, check in report["checks"].items() if not check["ok"]} == {"ami"}
    assert metric(box, "telephony_ami_connected") == 0

    manager.write_text(original)
    box.asterisk.cli("manager reload")
    logged(service, "ami.connected", 2)
    status, body = fetch(box, "/healthz")
    assert status == 200, body
    assert metric(box, "telephony_ami_connected") == 1
    assert metric(box, "telephony_ami_reconnects_total") == 1


def test_metrics_follow_a_call_through_the_ivr_into_the_queue(
    box: Sandbox, service: ServeProcess
) -> None:
    # The scrape after login rebuilt the gauges from QueueStatus: every queue, none waiting.
    default_queue = box.config.ivr.default_queue
    assert ("telephony_queue_callers", (("queue", default_queue),)) in samples(box)
    written = metric(box, "telephony_audit_events_written_total")
    agi_before = metric(box, "telephony_agi_command_seconds_count", command="STREAM FILE")
    results: list[SippResult] = []
    with watching(box.config) as ami:
        caller = threading.Thread(
            target=lambda: results.append(
                # Silent for 13 s: through the IVR (10.5 s) into the queue, then hang up.
                run_scenario("uac_112.xml", box.sip_target, workdir=box.workdir,
                             extra=("-d", "13000"))
            )
        )
        caller.start()
        try:
            queue = ami.wait_for("QueueCallerJoin").frame.get("Queue") or ""
            eventually(
                "the service never counted the caller in the queue",
                lambda: metric(box, "telephony_queue_callers", queue=queue) == 1,
            )
            assert metric(box, "telephony_calls_in_progress") == 1
            assert metric(box, "telephony_queue_longest_wait_seconds", queue=queue) < 5
        finally:
            caller.join(40)
    assert results and results[0].ok, results[0].output + results[0].errors
    eventually(
        "the call never ended in the service's gauges",
        lambda: metric(box, "telephony_calls_in_progress") == 0
        and metric(box, "telephony_queue_callers", queue=queue) == 0,
    )
    assert metric(box, "telephony_audit_events_written_total") > written
    assert metric(
        box, "telephony_agi_command_seconds_count", command="STREAM FILE"
    ) > agi_before
    assert metric(box, "telephony_answer_seconds_count") == 0  # nobody answered
    assert box.wait_no_channels() == 0


def test_operators_and_answer_time_follow_an_operator_answering(
    box: Sandbox, service: ServeProcess
) -> None:
    queue = box.config.ivr.default_queue
    with (
        watching(box.config) as ami,
        Phone("127.0.0.1", user="a1") as a1,
        Phone("127.0.0.2") as callers,
    ):
        a1.register(f"sip:{box.phone_target}", "a1", "secret-a1", timeout=5)
        wait_contact(box, "a1")  # behind the edge: ringable from its first qualify
        a1.auto_answer(0.2)
        # This first scrape rebuilds the gauges; from here on only AMI events move them.
        assert metric(box, "telephony_queue_operators", queue=queue, state="available") == 0
        done = run_cli(box.config, "operators", "login", "a1")
        assert done.returncode == 0, done.stdout + done.stderr
        eventually(
            "the operator's login never showed in /metrics",
            lambda: metric(box, "telephony_queue_operators", queue=queue, state="available") == 1,
        )
        # No location: the IVR routes to the default queue once the caller presses 1.
        call = callers.call(f"sip:112@{box.sip_target}", headers={
            "P-Asserted-Identity": "<sip:+6281299000001@mno.example;user=phone>",
        })
        call.wait_confirmed(10)
        call.wait_media(5)
        call.send_dtmf("1")
        a1.wait_incoming(20).wait_confirmed(5)
        connect = ami.wait_for("AgentConnect")
        linkedid = connect.frame.get("Linkedid")
        first = ami.wait_for("Newchannel", lambda f: f.get("Uniqueid") == linkedid)
        eventually(
            "the answer was never counted",
            lambda: metric(box, "telephony_answer_seconds_count") == 1,
        )
        call.hangup()
        call.wait_disconnected(10)
    # What the test's own AMI session saw, give or take the two sessions' delivery.
    expected = connect.at - first.at
    assert metric(box, "telephony_answer_seconds_sum") == pytest.approx(expected, abs=0.1)
    done = run_cli(box.config, "operators", "pause", "a1", "--reason", "break")
    assert done.returncode == 0, done.stdout + done.stderr
    eventually(
        "the pause never showed in /metrics",
        lambda: metric(box, "telephony_queue_operators", queue=queue, state="paused") == 1,
    )
    assert box.wait_no_channels() == 0
