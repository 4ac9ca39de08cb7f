"""Fault injectors: stalls, kills, TCP cuts and a locked SQLite file."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from telephony.db import make_engine
from tests.harness.perf import faults, postgres

# /proc/net/tcp: one listener on 127.0.0.1:8080 and one established connection to it.
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 222 1
   2: garbage
"""


def state(pid: int) -> str:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def wait_state(pid: int, wanted: str) -> str:
    deadline = time.monotonic() + 5
    while state(pid) not in wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    return state(pid)


def test_proc_net_tcp_is_decoded() -> None:
    sockets = faults.parse_proc_net_tcp(PROC_NET_TCP)

    assert sockets == [
        faults.Socket(("127.0.0.1", 8080), ("0.0.0.0", 0), "0A", 111),
        faults.Socket(("127.0.0.1", 50000), ("127.0.0.1", 8080), "01", 222),
    ]
    assert faults.kill_argv(sockets[1]) == [
        "ss", "-K", "-t", "src", "127.0.0.1", "sport", "=", ":50000",
        "dst", "127.0.0.1", "dport", "=", ":8080",
    ]


def test_stalled_freezes_and_always_thaws(sleeper: subprocess.Popen[bytes]) -> None:
    with pytest.raises(RuntimeError), faults.stalled(sleeper.pid):
        assert wait_state(sleeper.pid, "T") == "T"
        raise RuntimeError("the drill failed mid-stall")
    assert wait_state(sleeper.pid, "SR") in "SR"


def test_kill_is_minus_nine(sleeper: subprocess.Popen[bytes]) -> None:
    faults.kill_process(sleeper.pid)
    assert sleeper.wait(10) == -9


def test_connections_are_found_from_our_own_descriptors() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                found = faults.connections(os.getpid(), port)
                assert [s.local for s in found] == [client.getsockname()]
                assert faults.connections(os.getpid(), port + 1 if port < 65535 else 1) == []


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_cut_resets_both_ends() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                assert faults.cut_connections(os.getpid(), port) == 1
                accepted.settimeout(5)
                with pytest.raises(ConnectionResetError):
                    accepted.recv(1)
                client.settimeout(5)
                with pytest.raises(OSError):
                    client.recv(1)


def test_sqlite_lock_makes_writes_fail_until_released(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (x)")
    lock = faults.SqliteLock(path)
    lock.acquire()
    writer = sqlite3.connect(path, timeout=0.1)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        writer.execute("INSERT INTO t VALUES (1)")
    lock.release()
    writer.execute("INSERT INTO t VALUES (1)")
    writer.commit()
    writer.close()


@pytest.mark.skipif(postgres.bin_dir() is None, reason="needs PostgreSQL server binaries")
def test_a_private_postgres_cluster_goes_away_and_comes_back() -> None:
    with postgres.Cluster() as cluster:
        engine = make_engine(cluster.url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                assert connection.execute(text("select 1")).scalar() == 1
            cluster.stop()
            assert not cluster.running()
            with pytest.raises(OperationalError), engine.connect():
                pass
            cluster.start()
            with engine.connect() as connection:
                assert connection.execute(text("select 1")).scalar() == 1
        finally:
            engine.dispose()
    assert not cluster.root.exists()
