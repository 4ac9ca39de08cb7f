"""The AMI client over TLS against a TLS manager stand-in on 127.0.0.1 (real sockets, real
OpenSSL): verification, and the reader decrypting while other threads send."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from telephony.ami import AMIConnection, Frame, FrameParser
from telephony.ami.stream import client_context
from tests.harness.tls import make_certificate

SENDERS = 4
PINGS_PER_THREAD = 25
EVENTS_PER_PING = 20


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"), "ami test")


class TLSManager:
    """Accepts TLS clients, logs them in, and answers every Ping with a burst of events
    first, so that the client's reader decrypts while its other threads encrypt."""

    def __init__(self, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.pings = 0
        self.events = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        with contextlib.suppress(OSError), self._context.wrap_socket(raw, server_side=True) as conn:
            conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
            parser = FrameParser()
            while data := conn.recv(4096):
                for action in parser.feed(data):
                    conn.sendall(self._reply(action))

    def _reply(self, action: Frame) -> bytes:
        ok = f"Response: Success\r\nActionID: {action['ActionID']}\r\n"
        if action["Action"] == "Ping":
            self.pings += 1
            first, self.events = self.events, self.events + EVENTS_PER_PING
            burst = "".join(f"Event: Test\r\nSeq: {n}\r\n\r\n" for n in range(first, self.events))
            return (burst + ok + "Ping: Pong\r\n\r\n").encode()
        return (ok + "\r\n").encode()


@pytest.fixture
def manager(certificate: tuple[Path, Path]) -> Iterator[TLSManager]:
    server = TLSManager(*certificate)
    yield server
    server.close()


def _client(port: int, context: ssl.SSLContext, events: list[Frame]) -> AMIConnection:
    return AMIConnection("127.0.0.1", port, "telephony", "s3cret", on_event=events.append,
                         tls=context, keepalive_s=30, connect_timeout_s=2.0,
                         backoff_initial_s=0.05, backoff_max_s=0.2)


def test_events_arrive_whole_and_in_order_while_other_threads_send(
    manager: TLSManager, certificate: tuple[Path, Path]
) -> None:
    events: list[Frame] = []
    ami = _client(manager.port, client_context(certificate[0]), events)
    ami.start()
    try:
        assert ami.wait_connected(5)

        def ping() -> None:
            for _ in range(PINGS_PER_THREAD):
                assert ami.send_action("Ping", timeout=10).get("Ping") == "Pong"

        senders = [threading.Thread(target=ping) for _ in range(SENDERS)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(30)
        assert manager.pings == SENDERS * PINGS_PER_THREAD
        total = SENDERS * PINGS_PER_THREAD * EVENTS_PER_PING
        assert [int(e.get("Seq") or -1) for e in events] == list(range(total))
    finally:
        ami.stop()


def test_a_server_the_client_cannot_verify_is_never_logged_in_to(manager: TLSManager) -> None:
    ami = _client(manager.port, client_context(), [])  # the system CAs do not know it
    ami.start()
    try:
        assert not ami.wait_connected(1.0)
    finally:
        ami.stop()
