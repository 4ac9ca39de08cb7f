"""Property tests: whatever the AGI peer sends, nothing escapes and the server keeps serving."""

from __future__ import annotations

import contextlib
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from asterisk.agi import AGIHangup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony.agi import IVR, DefaultRouter, FastAGIServer
from telephony.agi.channel import (
    MSET_PAIRS,
    Channel,
    ConnectionClosed,
    LineReader,
    ProtocolError,
    SessionAGI,
    quote,
    read_env,
)
from tests.harness.agi import FakeAsterisk, mset_pairs, serving, split_args, thread_errors

PROMPTS = Path(__file__).resolve().parents[2] / "ivr_prompts"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PLAUSIBLE_REPLIES = st.sampled_from([
    "200 result=0", "200 result=49 endpos=10", "200 result=-1", "200 result=-1 endpos=0",
    "200 result=1 (hangup)", "200 result=1 (", "200 result=", "200", "510 Invalid",
    "520-Invalid command syntax.  Proper usage follows:", "520 End of proper usage.",
    "HANGUP", "", "200 result=999999999999999", "200 result=1 (a) b=c (d)", "agi_x: y",
])


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[tuple[FastAGIServer, list[str]]]:
    handler = IVR(PROMPTS, DefaultRouter("q"), fallback_queue="q")
    with thread_errors() as errors, serving(
        {"ivr": handler}, read_timeout=0.5, session_budget=2.0
    ) as server:
        yield server, errors


def exchange(address: tuple[str, int], data: bytes) -> None:
    """Send data as the whole of Asterisk's side, then read until the server hangs up."""
    with socket.create_connection(address, timeout=3) as sock, contextlib.suppress(OSError):
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass


def assert_still_serving(server: FastAGIServer, errors: list[str]) -> None:
    deadline = time.monotonic() + 3
    while server.active_sessions and time.monotonic() < deadline:
        time.sleep(0.005)
    assert server.active_sessions == 0
    assert errors == []


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_never_break_the_server(
    fuzzed: tuple[FastAGIServer, list[str]], data: bytes
) -> None:
    server, errors = fuzzed
    exchange(server.address, data)
    assert_still_serving(server, errors)


@FUZZ
@given(st.lists(st.one_of(PLAUSIBLE_REPLIES, st.text(max_size=200)), max_size=40))
def test_random_replies_after_a_valid_environment(
    fuzzed: tuple[FastAGIServer, list[str]], replies: list[str]
) -> None:
    server, errors = fuzzed
    env = FakeAsterisk(server.address).env_block()
    exchange(server.address, env + "".join(f"{r}\n" for r in replies).encode())
    assert_still_serving(server, errors)


def test_server_still_answers_a_real_call_after_fuzzing(
    fuzzed: tuple[FastAGIServer, list[str]],
) -> None:
    server, errors = fuzzed
    t = FakeAsterisk(server.address, keys={"id/welcome": "3"}).run()

    assert t.variables["EMERGENCY_TYPE"] == "fire"
    assert t.variables["IVR_STATUS"] == "OK"
    assert errors == []


@given(st.binary(max_size=2048))
def test_env_reader_raises_only_session_ending_errors(data: bytes) -> None:
    reader = LineReader(io.BytesIO(data))
    try:
        env = read_env(reader)
    except (ConnectionClosed, ProtocolError, AGIHangup):
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())


@given(st.text())
def test_quoting_round_trips_through_asterisk_argument_parsing(value: str) -> None:
    flat = value.replace("\r", " ").replace("\n", " ").replace("\0", "")

    assert split_args(f"SET VARIABLE {quote('X')} {quote(value)}") == ["SET", "VARIABLE", "X", flat]


class _Recorder:
    """Stands in for the socket: keeps each command line as res_agi would receive it."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def execute(self, command: str, *args: object) -> dict[str, tuple[str, str]]:
        self.lines.append(" ".join([command, *map(str, args)]))
        return {"result": ("0", "")}


def _asterisk_variables(lines: list[str]) -> list[tuple[str, str]]:
    """What Asterisk sets from these lines: SET VARIABLE's two arguments, or MSet's pairs."""
    found: list[tuple[str, str]] = []
    for line in lines:
        args = split_args(line)
        if args[:2] == ["SET", "VARIABLE"]:
            found.append((args[2], args[3]))
        else:
            assert args[:2] == ["EXEC", "MSet"], line
            found += mset_pairs(args[2])
    return found


VALUES = st.text(st.characters(blacklist_characters="\r\n\0"), max_size=300)
NAMES = st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True)


@given(st.lists(st.tuples(NAMES, VALUES | st.from_regex(r"[a-z0-9.:-]{1,40}", fullmatch=True)),
                max_size=60))
def test_set_all_sets_exactly_these_values_in_this_order(pairs: list[tuple[str, str]]) -> None:
    recorder = _Recorder()
    Channel(cast(SessionAGI, recorder)).set_all(pairs)

    assert _asterisk_variables(recorder.lines) == pairs
    for line in recorder.lines:
        # res_agi reads a command into a 2 KiB buffer.
        assert len(line.encode()) < 2048
        if line.startswith("EXEC MSet"):
            assert 2 <= split_args(line)[2].count("=") <= MSET_PAIRS
