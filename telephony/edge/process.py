"""Check, start, watch and stop one Kamailio that runs from a rendered runtime directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import structlog

from telephony.config import Config
from telephony.edge.render import EdgeError, EdgeLayout, layout_for, write
from telephony.edge.stats import RpcClient

log = structlog.get_logger(__name__)

# Kamailio's shared memory (all transactions and dialogs) and per-process memory, in MiB:
# enough for thousands of concurrent calls, small beside Asterisk.
SHM_MB = 64
PKG_MB = 8
BOOT_TIMEOUT_S = 20.0


def kamailio_binary(config: Config) -> str:
    path = shutil.which(config.edge.binary)
    if path is None:
        raise EdgeError(
            f"{config.edge.binary!r} is not installed (Debian: apt-get install kamailio "
            "kamailio-utils-modules; scripts/test installs them)"
        )
    return path


def syntax_check(binary: str, cfg: Path, run_dir: Path) -> None:
    """`kamailio -c`: the config parses and every module it names loads; nothing binds."""
    out = subprocess.run(
        [binary, "-c", "-f", str(cfg), "-Y", str(run_dir)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        lines = (out.stdout + out.stderr).strip().splitlines()
        raise EdgeError(f"kamailio -c {cfg} failed: {' | '.join(lines[-8:])}")


class Kamailio:
    def __init__(self, config: Config, layout: EdgeLayout | None = None) -> None:
        self.config = config
        self.layout = layout or layout_for(config)
        self.rpc = RpcClient("127.0.0.1", config.edge.rpc_port)
        self._proc: subprocess.Popen[bytes] | None = None

    def _render(self) -> None:
        """Render the runtime directory; files `deploy apply` installed are run as they are."""
        if self.layout.etc is None:
            write(self.config, self.layout)

    def check(self) -> str:
        """Render, then `kamailio -c`: the config parses and every module loads."""
        self._render()
        self.layout.run.mkdir(parents=True, exist_ok=True)
        syntax_check(kamailio_binary(self.config), self.layout.cfg, self.layout.run)
        return self.layout.cfg.read_text()

    def pid(self) -> int | None:
        try:
            pid = int(self.layout.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _argv(self) -> list[str]:
        # -DD: stay in the foreground as our child; -E: log to stderr (our log file).
        return [
            kamailio_binary(self.config), "-f", str(self.layout.cfg), "-Y", str(self.layout.run),
            "-P", str(self.layout.pidfile), "-DD", "-E", "-m", str(SHM_MB), "-M", str(PKG_MB),
        ]  # fmt: skip

    def exec(self) -> None:
        """Render, then become Kamailio (for a supervisor: scripts/run, systemd); its log
        goes to the runtime directory's kamailio.log, as with start()."""
        if self.pid() is not None:
            raise EdgeError(f"a Kamailio already runs from {self.layout.root}")
        self._render()
        self.layout.run.mkdir(parents=True, exist_ok=True)
        argv = self._argv()
        log_fd = os.open(self.layout.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.execv(argv[0], argv)

    def start(self, boot_timeout: float = BOOT_TIMEOUT_S) -> None:
        """Start in the foreground (-DD) as our child; ready once JSON-RPC answers."""
        if self.pid() is not None:
            raise EdgeError(f"a Kamailio already runs from {self.layout.root}")
        self._render()
        self.layout.run.mkdir(parents=True, exist_ok=True)
        argv = self._argv()
        with self.layout.log.open("ab") as out:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + boot_timeout
        while not self.rpc.answers():
            if self._proc.poll() is not None:
                raise EdgeError(f"Kamailio exited with {self._proc.returncode}; {self._tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise EdgeError(
                    f"Kamailio did not answer JSON-RPC in {boot_timeout}s; {self._tail()}"
                )
            time.sleep(0.05)
        edge = self.config.edge
        log.info("edge.started", pid=self._proc.pid, sip=f"{edge.bind}:{edge.port}")

    def _tail(self) -> str:
        lines = self.layout.log.read_text(errors="replace").splitlines()[-10:]
        return f"see {self.layout.log}: " + " | ".join(lines)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Kamailio stops its children), then SIGKILL to the whole session."""
        pid = self._proc.pid if self._proc is not None else self.pid()
        if pid is None:
            return
        for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig) if sig == signal.SIGKILL else os.kill(pid, sig)
            except ProcessLookupError:
                break
            if self._wait_exit(pid, wait_s):
                break
        self.layout.pidfile.unlink(missing_ok=True)
        log.info("edge.stopped", pid=pid)

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.05)
        return False


def _alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (started by an earlier `edge up`, never reaped) does not."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"
