"""The AMI byte stream under :class:`~telephony.ami.client.AMIConnection`: TCP, or TLS on TCP.

OpenSSL does not allow one SSL object to be used by two threads at once, yet the client reads
on its reader thread while actions are sent from any thread. So TLS runs on memory BIOs
(``ssl.SSLObject``): the reader waits for raw bytes on the socket holding no lock, and only
the short record processing and every write happen under one lock.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path
from typing import Protocol

BUFFER = 65536


class Stream(Protocol):
    def recv(self) -> bytes:
        """Some bytes, b"" at the end of the stream; raises TimeoutError when idle."""

    def sendall(self, data: bytes) -> None: ...

    def close(self) -> None:
        """Wake a blocked recv and release the socket; safe from any thread."""


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Verifies the server's chain and name: against `ca_file`, else the system's CAs."""
    context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class PlainStream:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self) -> bytes:
        return self._sock.recv(BUFFER)

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close(self) -> None:
        _shutdown(self._sock)


class TLSStream:
    """TLS client over a connected socket; the handshake runs in the constructor."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_name: str) -> None:
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_name)
        self._lock = threading.Lock()
        self._eof = False
        self._handshake()

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._sock.sendall(pending)

    def _handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                data = self._sock.recv(BUFFER)
                if not data:
                    raise ConnectionError("closed by the server during the TLS handshake") from None
                self._incoming.write(data)
            else:
                self._flush()
                return

    def _decrypt(self) -> bytes:
        chunks: list[bytes] = []
        while not self._eof:
            try:
                chunk = self._tls.read(BUFFER)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._eof = True
                break
            if not chunk:
                self._eof = True
                break
            chunks.append(chunk)
        # Reading may answer the peer (e.g. a TLS 1.3 key update).
        self._flush()
        return b"".join(chunks)

    def recv(self) -> bytes:
        while True:
            with self._lock:
                plain = self._decrypt()
            if plain or self._eof:
                return plain
            data = self._sock.recv(BUFFER)
            with self._lock:
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()

    def sendall(self, data: bytes) -> None:
        with self._lock:
            self._tls.write(data)
            self._flush()

    def close(self) -> None:
        _shutdown(self._sock)


def open_stream(
    address: tuple[str, int], timeout: float, tls: ssl.SSLContext | None
) -> PlainStream | TLSStream:
    """Connect (and with `tls`, verify the server as ``address[0]``); raises OSError."""
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if tls is None:
        return PlainStream(sock)
    try:
        return TLSStream(sock, tls, address[0])
    except BaseException:
        sock.close()
        raise
