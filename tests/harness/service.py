"""`telephony serve` as a child process, watched through its own JSON log.

The tests and the drills run the real command; the bench runs it through
:mod:`tests.harness.perf.probe` (the same service, which also writes out its own AGI timings
and audit lag when it stops). Readiness is always a log line (``service.ready``,
``ami.connected``, ...) or /healthz, never a delay.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from telephony.config import Config, as_set_flags
from tests.harness import CHECKOUT

STOP_TIMEOUT_S = 20.0


class ServeError(Exception):
    """The service did not log what was waited for."""


def clean_env() -> dict[str, str]:
    """The environment without TELEPHONY_* variables, which would override the flags."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}


def terminate(proc: subprocess.Popen[Any], timeout: float) -> int:
    """SIGTERM (after SIGCONT: a stopped process cannot handle it), then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode


class ServeProcess:
    def __init__(self, config: Config, log_path: Path, *, probe_out: Path | None = None) -> None:
        env = clean_env()
        if probe_out is None:
            argv = [sys.executable, "-m", "telephony.cli", "--log-format", "json",
                    *as_set_flags(config), "serve"]
        else:
            argv = [sys.executable, "-m", "tests.harness.perf.probe", "--out", str(probe_out),
                    *as_set_flags(config)]
            # The harness is not installed: the probe imports it from the checkout.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(CHECKOUT),
                                                              env.get("PYTHONPATH"))))
        self.config = config
        self.log_path = log_path
        self.records: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, name="serve-log", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("a") as sink:
            for line in self.proc.stdout:
                sink.write(line)
                sink.flush()
                try:
                    record = json.loads(line)
                except ValueError:
                    record = {"event": line.rstrip()}
                if not isinstance(record, dict):
                    record = {"event": str(record)}
                with self._changed:
                    self.records.append(record)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._changed:
            return [r for r in self.records if r.get("event") == name]

    def wait_for(self, name: str, timeout: float, *, after: int = 0) -> dict[str, Any]:
        """The first ``name`` line beyond the first ``after`` of them, waiting if need be."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [r for r in self.records if r.get("event") == name]
                if len(found) > after:
                    return found[after]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise ServeError(
                        f"telephony serve logged no {name} within {timeout:.0f}s "
                        f"(exit code {self.proc.poll()}); see {self.log_path}"
                    )
                self._changed.wait(min(left, 1.0))

    def ready(self, timeout: float = 30.0) -> ServeProcess:
        """Serving, and logged in to AMI with the operators put back into their queues."""
        self.wait_for("service.ready", timeout)
        self.wait_for("presence.restored", timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> ServeProcess:
        """Started, then healthy: /healthz answers 200 once AMI, AGI and the database are up."""
        deadline = time.monotonic() + timeout
        self.wait_for("service.ready", timeout)
        url = f"http://{self.config.health.bind}:{self.config.health.port}/healthz"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ServeError(f"{url} not healthy after {timeout}s: {self.log_path}")
            time.sleep(0.05)  # /healthz has no push signal: poll it

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        code = terminate(self.proc, timeout)
        self._reader.join(5)
        return code


def run_cli(config: Config, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run one `telephony` command against `config`, as an operator would from a shell."""
    argv = [sys.executable, "-m", "telephony.cli", "--log-format", "json",
            *as_set_flags(config), *args]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=clean_env(),
                          timeout=60, check=False)
