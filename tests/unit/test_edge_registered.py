"""The edge's word that a phone registered: the query Kamailio sends, serve's answer to it,
and the Qualifier that turns it into one PJSIPQualify per operator."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import pytest
from structlog.testing import capture_logs

from telephony.ami import NotConnected
from telephony.edge.pidf import REGISTERED_PATH, PidfValidator, registered_operator
from telephony.edge.registered import Qualifier


@pytest.mark.parametrize(
    ("query", "op"),
    [
        ("op=op3578", "op3578"),
        ("op=tls1&x=1", "tls1"),
        ("op=a_b-9", "a_b-9"),
        ("", None),
        ("op=", None),
        ("op=a", None),  # ids are 2-32 characters, as in the roster
        ("op=" + "a" * 33, None),
        ("op=Op1", None),
        ("op=op1%0aAction:%20Originate", None),  # what would split an AMI frame
        ("op=op1%3bx", None),
        ("op=op1&op=op2", None),
        ("op=op1&a=1&b=2&c=3&d=4", None),
        ("user=op1", None),
    ],
)
def test_only_one_well_formed_operator_id_is_taken(query: str, op: str | None) -> None:
    assert registered_operator(query) == op


@contextmanager
def validator(on_registered: Callable[[str], None] | None) -> Iterator[str]:
    server = PidfValidator("127.0.0.1", 0, on_registered)
    server.start()
    try:
        host, port = server.address
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_validator_hands_a_registered_operator_on_and_answers_204() -> None:
    heard: list[str] = []
    with validator(heard.append) as base:
        assert status(f"{base}{REGISTERED_PATH}?op=op3578") == 204
        assert status(f"{base}{REGISTERED_PATH}?op=BAD") == 400
        assert status(f"{base}/edge/pidf?op=op3578") == 404
    assert heard == ["op3578"]
    with validator(None) as base:
        assert status(f"{base}{REGISTERED_PATH}?op=op3578") == 404


class FakeAMI:
    """Records PJSIPQualify actions; the first one waits until the test releases it."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.fail = fail
        self.busy = threading.Event()
        self.release = threading.Event()
        self.done = threading.Condition()

    def send_action(
        self,
        name: str,
        *,
        timeout: float = 5.0,
        variables: Mapping[str, str] | None = None,
        **fields: str,
    ) -> object:
        assert name == "PJSIPQualify" and variables is None
        self.busy.set()
        assert self.release.wait(5)
        with self.done:
            self.sent.append(fields["Endpoint"])
            self.done.notify_all()
        if self.fail:
            raise NotConnected("AMI not connected; cannot send PJSIPQualify")
        return None

    def wait_sent(self, count: int) -> list[str]:
        with self.done:
            assert self.done.wait_for(lambda: len(self.sent) >= count, 5), self.sent
            return list(self.sent)


def test_requests_are_coalesced_per_operator_and_what_overflows_is_dropped() -> None:
    ami = FakeAMI()
    qualifier = Qualifier(ami, size=2)
    qualifier.start()
    try:
        qualifier.request("op1")
        assert ami.busy.wait(5)  # op1 is in flight: asking again queues a new qualify
        with capture_logs() as logs:
            for op in ("op2", "op1", "op2", "op1", "op3"):
                qualifier.request(op)
        assert [(e["event"], e["op"]) for e in logs] == [("edge.qualify_dropped", "op3")]
        ami.release.set()
        assert ami.wait_sent(3) == ["op1", "op2", "op1"]
    finally:
        qualifier.stop()
    assert ami.sent == ["op1", "op2", "op1"]


def test_a_failed_qualify_is_logged_and_the_next_one_is_sent() -> None:
    ami = FakeAMI(fail=True)
    ami.release.set()
    qualifier = Qualifier(ami)
    with capture_logs() as logs:
        qualifier.start()
        try:
            qualifier.request("op1")
            ami.wait_sent(1)
            qualifier.request("op2")
            assert ami.wait_sent(2) == ["op1", "op2"]
        finally:
            qualifier.stop()
    assert [e["op"] for e in logs if e["event"] == "edge.qualify_failed"] == ["op1", "op2"]
