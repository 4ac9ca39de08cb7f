"""A throw-away PostgreSQL cluster of the bench's own (initdb, pg_ctl).

Stopping a database on purpose must not hurt anyone else's tests, so the drills never touch
a shared server: they get a cluster in a temporary directory, on a free port, with trust
authentication on loopback only. When run as root the cluster runs as ``postgres`` (initdb
refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.harness.net import free_port

TIMEOUT_S = 60.0


class PostgresError(Exception):
    """No PostgreSQL server binaries, or the cluster would not start or stop."""


def bin_dir() -> Path | None:
    """The newest installed server version's bin directory (Debian's layout), or initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    def __init__(self) -> None:
        binaries = bin_dir()
        if binaries is None:
            raise PostgresError("no PostgreSQL server binaries (initdb) installed")
        self.bin = binaries
        self.root = Path(tempfile.mkdtemp(prefix="telephony-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            owner = pwd.getpwnam(self._user)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                              check=False, cwd=self.root)  # fmt: skip
        if done.returncode != 0:
            raise PostgresError(f"{' '.join(argv[:2])}: {(done.stdout + done.stderr).strip()}")

    def create(self) -> Cluster:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8")  # fmt: skip
        return self.start()

    def start(self) -> Cluster:
        """Start and wait until it accepts connections (pg_ctl -w)."""
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=on -c synchronous_commit=on")  # fmt: skip
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", str(int(TIMEOUT_S)), "start")  # fmt: skip
        return self

    def stop(self) -> None:
        """Fast shutdown: open transactions are rolled back, as when a server goes away."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop()
            except PostgresError:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        try:
            return self.create()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.destroy()
