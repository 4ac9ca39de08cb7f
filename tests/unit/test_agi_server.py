"""The FastAGI server over real sockets: routing, failures, watchdog, concurrency, stop."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from telephony.agi import FastAGIServer, Session
from telephony.agi.server import _args
from tests.harness.agi import FakeAsterisk, Hook, serving, thread_errors

LINKEDID = "1700000000.1"


def ok(session: Session) -> None:
    session.channel.set("GREETING", 'say "hi" \\ bye')
    session.channel.set("IVR_STATUS", "OK")


def crash(session: Session) -> None:
    raise RuntimeError("handler bug")


def slow(session: Session) -> None:
    session.channel.play("/prompts/id/welcome", "")
    session.channel.set("IVR_STATUS", "OK")


def stalling(seconds: float) -> Hook:
    def hook(line: str) -> None:
        if line.startswith("STREAM FILE"):
            time.sleep(seconds)

    return hook


def wait_idle(server: FastAGIServer, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while server.active_sessions and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as captured:
        yield captured


@pytest.fixture
def server() -> Iterator[FastAGIServer]:
    scripts = {"ok": ok, "crash": crash, "slow": slow}
    with thread_errors() as errors, serving(scripts, session_budget=0.5, read_timeout=2.0) as s:
        yield s
    assert errors == []


def test_dispatches_on_network_script_and_quotes_values(server: FastAGIServer) -> None:
    t = FakeAsterisk(server.address, script="ok").run()

    assert t.variables == {"GREETING": 'say "hi" \\ bye', "IVR_STATUS": "OK"}
    assert t.commands[0] == 'GET FULL VARIABLE "${CHANNEL(linkedid)}"'
    assert t.server_closed


def test_unknown_script_reports_failure(
    server: FastAGIServer, logs: list[MutableMapping[str, Any]]
) -> None:
    t = FakeAsterisk(server.address, script="nope").run()

    assert t.variables == {"IVR_STATUS": "FAILED"}
    assert {"event": "agi.unknown_script", "script": "nope", "linkedid": LINKEDID}.items() <= next(
        e for e in logs if e["event"] == "agi.unknown_script").items()


def test_handler_crash_reports_failure_with_linkedid(
    server: FastAGIServer, logs: list[MutableMapping[str, Any]]
) -> None:
    t = FakeAsterisk(server.address, script="crash").run()

    assert t.variables == {"IVR_STATUS": "FAILED"}
    failed = next(e for e in logs if e["event"] == "agi.handler_failed")
    assert failed["linkedid"] == LINKEDID
    assert failed["uniqueid"] == "1700000000.2"
    assert FakeAsterisk(server.address, script="ok").run().variables["IVR_STATUS"] == "OK"


def test_watchdog_closes_a_stalled_session(
    server: FastAGIServer, logs: list[MutableMapping[str, Any]]
) -> None:
    started = time.monotonic()
    fake = FakeAsterisk(server.address, script="slow", hook=stalling(1.5))
    threading.Thread(target=fake.run, daemon=True).start()
    time.sleep(0.1)
    wait_idle(server)
    freed = time.monotonic() - started

    assert 0.4 < freed < 1.0
    over = next(e for e in logs if e["event"] == "agi.session_over_budget")
    assert over["linkedid"] == LINKEDID


def test_read_timeout_ends_a_silent_peer(logs: list[MutableMapping[str, Any]]) -> None:
    with serving({"slow": slow}, read_timeout=0.2, session_budget=5.0) as server:
        fake = FakeAsterisk(server.address, script="slow", hook=stalling(1.0))
        started = time.monotonic()
        threading.Thread(target=fake.run, daemon=True).start()
        time.sleep(0.05)
        wait_idle(server)

        assert time.monotonic() - started < 0.6
    lost = next(e for e in logs if e["event"] == "agi.connection_lost")
    assert "TimeoutError" in str(lost["error"])


def test_slow_call_does_not_block_others(server: FastAGIServer) -> None:
    stalled = FakeAsterisk(server.address, script="slow", hook=stalling(0.4))
    threading.Thread(target=stalled.run, daemon=True).start()
    time.sleep(0.05)

    started = time.monotonic()
    results = []
    for _ in range(10):
        results.append(FakeAsterisk(server.address, script="ok").run().variables["IVR_STATUS"])

    assert results == ["OK"] * 10
    assert time.monotonic() - started < 0.3
    assert server.active_sessions >= 1  # the stalled call is still in progress


def test_many_concurrent_sessions(server: FastAGIServer) -> None:
    outcomes: list[str] = []

    def call() -> None:
        t = FakeAsterisk(server.address, script="slow", hook=stalling(0.2))
        outcomes.append(t.run().variables.get("IVR_STATUS", ""))

    threads = [threading.Thread(target=call) for _ in range(30)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)

    assert outcomes == ["OK"] * 30
    assert time.monotonic() - started < 1.0


def test_session_limit_refuses_fast_instead_of_queueing() -> None:
    with serving({"slow": slow, "ok": ok}, max_sessions=1) as server:
        stalled = FakeAsterisk(server.address, script="slow", hook=stalling(0.5))
        threading.Thread(target=stalled.run, daemon=True).start()
        time.sleep(0.1)

        refused = FakeAsterisk(server.address, script="ok").run()
        assert refused.commands == [] and refused.server_closed
        assert refused.seconds < 0.2
        wait_idle(server)
        assert FakeAsterisk(server.address, script="ok").run().variables["IVR_STATUS"] == "OK"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"agi_network: yes\n",
        b"garbage without colon\n\n",
        b"x" * 20000 + b"\n",
        b"\xff\xfe\n\n",
    ],
    ids=["eof", "eof-mid-env", "bad-env", "huge-line", "binary"],
)
def test_bad_connections_end_cleanly(server: FastAGIServer, payload: bytes) -> None:
    # The server may hang up on a huge line before the client is done (ENOTCONN, EPIPE,
    # ECONNRESET): either way the session must end cleanly.
    with (
        socket.create_connection(server.address, timeout=2) as sock,
        contextlib.suppress(OSError),
    ):
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):
            pass
    wait_idle(server)

    assert server.active_sessions == 0
    assert FakeAsterisk(server.address, script="ok").run().variables["IVR_STATUS"] == "OK"


def test_stop_cuts_off_sessions_after_timeout() -> None:
    server = FastAGIServer("127.0.0.1", 0, {"slow": slow}, session_budget=30.0)
    server.start()
    address = server.address
    fake = FakeAsterisk(address, script="slow", hook=stalling(3.0))
    threading.Thread(target=fake.run, daemon=True).start()
    time.sleep(0.1)

    started = time.monotonic()
    server.stop(timeout=0.2)

    assert time.monotonic() - started < 1.5
    assert server.active_sessions == 0
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=0.5)


def test_sighup_handler_is_left_alone(server: FastAGIServer) -> None:
    before = signal.getsignal(signal.SIGHUP)
    FakeAsterisk(server.address, script="ok").run()

    assert signal.getsignal(signal.SIGHUP) is before


def test_command_timings_are_recorded(server: FastAGIServer) -> None:
    for _ in range(5):
        FakeAsterisk(server.address, script="ok").run()

    stats = server.timings.stats("SET VARIABLE")
    assert stats is not None and stats.count == 10
    assert 0 <= stats.p50 <= stats.p95 <= stats.p99 <= stats.max < 1.0
    assert set(server.timings.summary()) == {"GET FULL VARIABLE", "SET VARIABLE"}


def test_agi_args_are_read_in_order() -> None:
    env = {"agi_arg_2": "b", "agi_arg_1": "", "agi_arg_4": "skipped"}

    assert _args(env) == ("", "b")
