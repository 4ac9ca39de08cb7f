"""Start, watch, query and stop one Asterisk that runs from a rendered runtime directory."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import structlog

from telephony.errors import TelephonyError
from telephony.pbx.layout import Layout
from telephony.pbx.provision import AsteriskInstall

log = structlog.get_logger(__name__)


class AsteriskError(TelephonyError):
    """Asterisk did not start, did not answer, or a CLI command failed."""


class Asterisk:
    def __init__(self, install: AsteriskInstall, layout: Layout) -> None:
        self.install = install
        self.layout = layout
        self._proc: subprocess.Popen[bytes] | None = None

    def _argv(self, *extra: str) -> list[str]:
        return [*self.install.command, "-C", str(self.layout.asterisk_conf), *extra]

    def cli(self, command: str, timeout: float = 30.0) -> str:
        """Run one CLI command through the control socket (`asterisk -rx`)."""
        try:
            out = subprocess.run(
                self._argv("-rx", command),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AsteriskError(f"asterisk -rx {command!r} timed out after {timeout}s") from exc
        if out.returncode != 0 or "Unable to connect to remote asterisk" in out.stdout:
            raise AsteriskError(
                f"asterisk -rx {command!r} failed: {(out.stdout + out.stderr).strip()}"
            )
        return out.stdout

    def pid(self) -> int | None:
        """The pid of the Asterisk serving this runtime directory, if it is alive."""
        try:
            pid = int(self.layout.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self, boot_timeout: float = 60.0) -> None:
        """Start Asterisk in the foreground (-f) as our child and wait until fully booted."""
        if self.pid() is not None:
            raise AsteriskError(f"an Asterisk already runs from {self.layout.root}")
        console = self.layout.console_log.open("ab")
        self._proc = subprocess.Popen(
            self._argv("-f", "-n"),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        console.close()
        self.layout.pidfile.write_text(f"{self._proc.pid}\n")
        self._wait_booted(boot_timeout)
        log.info("asterisk.booted", pid=self._proc.pid, runtime_dir=str(self.layout.root))

    def _wait_booted(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # The control socket appears early in boot; only then can we ask for readiness.
        while not self.layout.ctl.exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise AsteriskError(f"no control socket after {timeout}s; see {self._log_hint()}")
            time.sleep(0.05)
        remaining = max(1.0, deadline - time.monotonic())
        out = self.cli("core waitfullybooted", timeout=remaining)
        if "fully booted" not in out:
            raise AsteriskError(f"Asterisk did not boot: {out.strip()}; see {self._log_hint()}")

    def _check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise AsteriskError(
                f"Asterisk exited with {self._proc.returncode} while booting; "
                f"see {self._log_hint()}"
            )

    def _log_hint(self) -> str:
        tail = ""
        path: Path = self.layout.console_log
        if path.exists():
            tail = "\n".join(path.read_text(errors="replace").splitlines()[-20:])
        return f"{path}\n{tail}"

    def stop(self, timeout: float = 15.0) -> None:
        """Stop gracefully (no new calls; those in progress end), then ask harder, then kill.

        `core stop gracefully` answers only when Asterisk exits, so the CLI client is not
        waited on: Asterisk's own exit is.
        """
        pid = self.pid()
        if pid is None:
            return
        for command, wait_s in (("core stop gracefully", timeout), ("core stop now", 5.0)):
            client = subprocess.Popen(
                self._argv("-rx", command), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            exited = self._wait_exit(pid, wait_s)
            client.kill()
            client.wait()
            if exited:
                return
            log.warning("asterisk.stop_slow", command=command, waited_s=wait_s, pid=pid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            if self._wait_exit(pid, 5.0):
                return

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            self.layout.pidfile.unlink(missing_ok=True)
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                self.layout.pidfile.unlink(missing_ok=True)
                return True
            time.sleep(0.05)
        return False

    def channel_count(self) -> int:
        """Active channels right now (`core show channels count`)."""
        out = self.cli("core show channels count")
        for line in out.splitlines():
            if "active channel" in line:
                return int(line.split()[0])
        raise AsteriskError(f"unexpected answer to core show channels count: {out!r}")
