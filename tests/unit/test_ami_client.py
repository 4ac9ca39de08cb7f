from __future__ import annotations

import contextlib
import itertools
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from telephony.ami.client import (
    ActionFailed,
    AMIConnection,
    NotConnected,
    backoff_delay,
)
from telephony.ami.frames import Frame, FrameParser


class FakeAMI:
    """A minimal Asterisk manager over real TCP on 127.0.0.1, driven by the test."""

    def __init__(self, secret: str = "s3cret") -> None:
        self.secret = secret
        self.silent = False
        self.actions: list[Frame] = []
        self.connections = 0
        self.connect_times: list[float] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._conn: socket.socket | None = None
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.drop()

    def drop(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def send(self, data: bytes) -> None:
        with self._lock:
            assert self._conn is not None
            self._conn.sendall(data)

    def names(self) -> list[str]:
        return [a["Action"] for a in self.actions]

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self.connect_times.append(time.monotonic())
            with self._lock:
                self._conn = conn
            conn.sendall(b"Asterisk Call Manager/9.0.0\r\n")
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        parser = FrameParser()
        try:
            while data := conn.recv(4096):
                for action in parser.feed(data):
                    self.actions.append(action)
                    reply = self._reply(action)
                    if reply:
                        conn.sendall(reply)
        except OSError:
            return

    def _reply(self, action: Frame) -> bytes:
        aid = action["ActionID"]
        name = action["Action"]
        ok = f"Response: Success\r\nActionID: {aid}\r\n"
        error = f"Response: Error\r\nActionID: {aid}\r\nMessage: "
        if name == "Login":
            if action["Secret"] != self.secret:
                return (error + "Authentication failed\r\n\r\n").encode()
            return (ok + "Message: Authentication accepted\r\n\r\n").encode()
        if name == "Ping":
            return b"" if self.silent else (ok + "Ping: Pong\r\n\r\n").encode()
        if name == "Filter":
            return (ok + "\r\n").encode()
        if name == "CoreShowChannels":
            items = "".join(
                f"Event: CoreShowChannel\r\nActionID: {aid}\r\nChannel: PJSIP/a-{i}\r\n\r\n"
                for i in range(2)
            )
            return (
                ok
                + "EventList: start\r\nMessage: Channels will follow\r\n\r\n"
                + items
                + f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\n"
                + "EventList: Complete\r\nListItems: 2\r\n\r\n"
            ).encode()
        if name == "Logoff":
            return f"Response: Goodbye\r\nActionID: {aid}\r\n\r\n".encode()
        return (error + "Invalid/unknown command\r\n\r\n").encode()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def server() -> Iterator[FakeAMI]:
    fake = FakeAMI()
    yield fake
    fake.close()


def make_client(
    server: FakeAMI,
    events: queue.Queue[Frame],
    connects: list[float],
    secret: str = "s3cret",
    event_names: tuple[str, ...] = (),
) -> AMIConnection:
    return AMIConnection(
        "127.0.0.1",
        server.port,
        "telephony",
        secret,
        on_event=events.put,
        on_connect=lambda: connects.append(time.monotonic()),
        keepalive_s=0.2,
        connect_timeout_s=1.0,
        backoff_initial_s=0.05,
        backoff_max_s=0.4,
        event_names=event_names,
    )


@pytest.fixture
def client(server: FakeAMI) -> Iterator[tuple[AMIConnection, queue.Queue[Frame], list[float]]]:
    events: queue.Queue[Frame] = queue.Queue()
    connects: list[float] = []
    ami = make_client(server, events, connects, event_names=("Newchannel", "Hangup"))
    ami.start()
    wait_for(lambda: len(connects) == 1)
    yield ami, events, connects
    ami.stop()


def test_login_filters_and_batched_events_keep_order(
    server: FakeAMI, client: tuple[AMIConnection, queue.Queue[Frame], list[float]]
) -> None:
    ami, events, connects = client
    assert ami.version == "9.0.0"
    assert connects and server.names()[:3] == ["Login", "Filter", "Filter"]
    assert server.actions[1]["MatchCriteria"] == "action(include),name(Newchannel)"
    server.send(b"".join(b"Event: Newstate\r\nSeq: %d\r\n\r\n" % i for i in range(20)))
    got = [events.get(timeout=2) for _ in range(20)]
    assert [f["Seq"] for f in got] == [str(i) for i in range(20)]
    stamps = [f.received_ns for f in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == 20


def test_actions_responses_and_lists(
    server: FakeAMI, client: tuple[AMIConnection, queue.Queue[Frame], list[float]]
) -> None:
    ami, events, _ = client
    assert ami.send_action("Ping")["Ping"] == "Pong"
    listing = ami.send_list_action("CoreShowChannels")
    assert [e["Channel"] for e in listing.events] == ["PJSIP/a-0", "PJSIP/a-1"]
    assert listing.complete is not None and listing.complete["ListItems"] == "2"
    with pytest.raises(ActionFailed, match="Invalid/unknown"):
        ami.send_action("Bogus")
    assert events.empty(), "list events must go to the waiter, not on_event"


def test_reconnects_after_server_drop(
    server: FakeAMI, client: tuple[AMIConnection, queue.Queue[Frame], list[float]]
) -> None:
    ami, events, connects = client
    server.drop()
    wait_for(lambda: len(connects) == 2)
    assert ami.connected and server.connections == 2
    server.send(b"Event: Hangup\r\nUniqueid: 1.1\r\n\r\n")
    assert events.get(timeout=2)["Uniqueid"] == "1.1"


def test_keepalive_detects_silent_server(
    server: FakeAMI, client: tuple[AMIConnection, queue.Queue[Frame], list[float]]
) -> None:
    ami, _, connects = client
    server.silent = True
    wait_for(lambda: not ami.connected, timeout=3)
    server.silent = False
    wait_for(lambda: len(connects) == 2, timeout=3)
    assert server.connections == 2


def test_send_when_disconnected_raises(server: FakeAMI) -> None:
    ami = make_client(server, queue.Queue(), [])
    with pytest.raises(NotConnected):
        ami.send_action("Ping")


def test_failed_login_retries_with_growing_backoff(server: FakeAMI) -> None:
    connects: list[float] = []
    ami = make_client(server, queue.Queue(), connects, secret="wrong")
    ami.start()
    try:
        wait_for(lambda: server.connections >= 5, timeout=5)
    finally:
        ami.stop()
    assert not connects
    gaps = [b - a for a, b in itertools.pairwise(server.connect_times)]
    assert gaps[3] > gaps[0] * 2


def test_stop_logs_off(
    server: FakeAMI, client: tuple[AMIConnection, queue.Queue[Frame], list[float]]
) -> None:
    ami, _, _ = client
    assert ami.wait_connected(1)
    ami.stop()
    assert "Logoff" in server.names()
    assert not ami.connected


def test_backoff_delay_is_capped() -> None:
    assert [backoff_delay(n, 0.5, 4.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff_delay(10_000, 0.5, 30.0) == 30.0
