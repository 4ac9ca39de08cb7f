"""Free loopback ports, so that sandboxes, bench and drills never collide with anything."""

from __future__ import annotations

import socket
import time

TRUNK = "127.0.0.2"
"""The mobile network's address: the sandbox's trunk is recognised by it."""
STRANGER = "127.0.0.3"
"""A loopback address that is not the trunk (the INVITE flood comes from here)."""


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_udp(host: str = "127.0.0.1") -> int:
    return free_port(socket.SOCK_DGRAM, host)


def wait_udp_bound(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until some process (a SIPp UAS) listens on host:port/udp."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port}/udp after {timeout}s")
        time.sleep(0.02)
