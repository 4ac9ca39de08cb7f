"""Run `telephony serve` as a real subprocess against a sandbox, and break it on purpose."""

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
from telephony.perf.serve import terminate


class ServiceProcess:
    """`telephony serve` with its JSON log lines collected; `ready` waits on its own log."""

    def __init__(self, config: Config, log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
        argv = [sys.executable, "-m", "telephony.cli", "--log-format", "json",
                *as_set_flags(config), "serve"]
        self.config = config
        self.log_path = log_path
        self.records: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

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
                self.records.append(record)
                if record.get("event") == "service.ready":
                    self._ready.set()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Started, then healthy: /healthz answers 200 once AMI, AGI and the database are up."""
        deadline = time.monotonic() + timeout
        if not self._ready.wait(timeout):
            raise RuntimeError(f"telephony serve not ready after {timeout}s: {self.log_path}")
        url = f"http://{self.config.health.bind}:{self.config.health.port}/healthz"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not healthy after {timeout}s: {self.log_path}")
            time.sleep(0.05)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("event") == name]

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        code = terminate(self.proc, timeout)
        self._reader.join(5)
        return code


def run_cli(config: Config, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run one `telephony` command against `config`, as an operator would from a shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    argv = [sys.executable, "-m", "telephony.cli", "--log-format", "json",
            *as_set_flags(config), *args]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env,
                          timeout=60, check=False)
