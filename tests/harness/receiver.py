"""An agency's webhook receiver for tests and the bench: HTTPS on loopback with a throw-away
self-signed certificate (its own CA), recording what it was sent, verifying the signature.

``mode`` makes it answer 200 ("up"), hold the connection without answering ("hang", a slow
receiver), or answer garbage ("garbage"); ``stop`` closes the port (an agency outage) and
``start`` opens the same port again.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from telephony.incidents.webhook import SIGNATURE_HEADER, verify
from tests.harness.net import free_port
from tests.harness.tls import make_certificate


@dataclass(frozen=True)
class Delivery:
    at: float
    headers: dict[str, str]
    body: dict[str, Any]
    signed: bool


class Receiver:
    def __init__(self, directory: Path, secret: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = make_certificate(directory, "agency receiver")
        self.secret = secret
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}/hook"
        self.mode = "up"
        self.deliveries: list[Delivery] = []
        self.refused = 0
        self._release = threading.Event()
        self._arrived = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.mode == "hang":
                    receiver._release.wait(30)
                    receiver.refused += 1
                    return
                if receiver.mode == "garbage":
                    receiver.refused += 1
                    self.wfile.write(b"\x00garbage\r\n\r\n")
                    return
                signed = verify(receiver.secret, self.headers.get(SIGNATURE_HEADER, ""), body)
                with receiver._arrived:
                    receiver.deliveries.append(Delivery(time.time(), dict(self.headers.items()),
                                                        json.loads(body), signed))
                    receiver._arrived.notify_all()
                self.send_response(200 if signed else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, name="receiver", daemon=True).start()

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._release = threading.Event()

    def wait(self, count: int, timeout: float) -> list[Delivery]:
        """Block until ``count`` deliveries arrived; they are returned (AssertionError if not)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.deliveries)} of {count} deliveries arrived"
                self._arrived.wait(left)
            return list(self.deliveries)
