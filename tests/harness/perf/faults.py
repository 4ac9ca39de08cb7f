"""Fault injectors for the drills: each breaks one thing the way it breaks in production.

- a process stalled (SIGSTOP, e.g. a deadlock or a VM pause) and resumed, or killed -9;
- one TCP connection cut, as a NAT timeout or a firewall reset does: the kernel destroys
  the socket (``ss -K``, Linux's SOCK_DESTROY), the peer gets a reset. The connection is
  found from the process's own file descriptors, so nothing else is touched;
- the database gone: a PostgreSQL server stopped (see :mod:`tests.harness.perf.postgres`), or a
  SQLite file held under an exclusive lock by another connection, which is how a SQLite
  audit store becomes unwritable (file permissions do not stop root).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# /proc/net/tcp state codes (include/net/tcp_states.h).
ESTABLISHED = "01"


class FaultError(Exception):
    """The fault could not be injected."""


@contextmanager
def stalled(pid: int) -> Iterator[None]:
    """The process frozen for the duration of the block, and thawed whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def kill_process(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class Socket:
    local: tuple[str, int]
    remote: tuple[str, int]
    state: str
    inode: int


def _address(text: str) -> tuple[str, int]:
    """``0100007F:1F90`` (little-endian IPv4 as in /proc/net/tcp) -> ("127.0.0.1", 8080)."""
    host, port = text.split(":")
    octets = bytes.fromhex(host)[::-1]
    return ".".join(str(b) for b in octets), int(port, 16)


def parse_proc_net_tcp(text: str) -> list[Socket]:
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        sockets.append(Socket(_address(fields[1]), _address(fields[2]), fields[3],
                              int(fields[9])))  # fmt: skip
    return sockets


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets the process holds open (its fd links read ``socket:[N]``)."""
    found = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def connections(pid: int, remote_port: int) -> list[Socket]:
    """The process's established IPv4 TCP connections to ``remote_port``."""
    mine = socket_inodes(pid)
    table = parse_proc_net_tcp(Path(f"/proc/{pid}/net/tcp").read_text())
    return [s for s in table if s.inode in mine and s.remote[1] == remote_port
            and s.state == ESTABLISHED]  # fmt: skip


def kill_argv(sock: Socket) -> list[str]:
    (lhost, lport), (rhost, rport) = sock.local, sock.remote
    return ["ss", "-K", "-t", "src", lhost, "sport", "=", f":{lport}",
            "dst", rhost, "dport", "=", f":{rport}"]  # fmt: skip


def cut_connections(pid: int, remote_port: int) -> int:
    """Destroy the process's connections to ``remote_port``; returns how many were cut."""
    cut = 0
    for sock in connections(pid, remote_port):
        done = subprocess.run(kill_argv(sock), capture_output=True, text=True, timeout=10,
                              check=False)  # fmt: skip
        if done.returncode != 0:
            raise FaultError(f"ss -K failed: {(done.stdout + done.stderr).strip()}")
        cut += 1
    return cut


class SqliteLock:
    """Another connection holding SQLite's exclusive lock: every writer fails until release."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    def acquire(self) -> None:
        connection = sqlite3.connect(self._path, timeout=10, isolation_level=None)
        try:
            connection.execute("BEGIN EXCLUSIVE")
        except sqlite3.Error as exc:
            connection.close()
            raise FaultError(f"could not lock {self._path}: {exc}") from exc
        self._connection = connection

    def release(self) -> None:
        if self._connection is not None:
            self._connection.execute("ROLLBACK")
            self._connection.close()
            self._connection = None
