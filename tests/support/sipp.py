"""Run SIPp scenarios (kept next to the tests, in tests/integration/scenarios/)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import free_port

SCENARIOS = Path(__file__).resolve().parents[1] / "integration" / "scenarios"


@dataclass(frozen=True)
class SippResult:
    returncode: int
    output: str
    errors: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise RuntimeError("sipp is not installed; scripts/test installs the sip-tester package")
    return path


def run_scenario(
    scenario: str,
    target: str,
    *,
    source: str = "127.0.0.2",
    service: str = "112",
    calls: int = 1,
    rate: float = 1.0,
    timeout_s: float = 60.0,
    port: int | None = None,
    workdir: Path,
    extra: tuple[str, ...] = (),
) -> SippResult:
    """Place `calls` calls with scenario `scenario` (a file name in SCENARIOS) at `target`."""
    port = port or free_port(socket.SOCK_DGRAM, source)
    errors = workdir / f"sipp-{scenario}-{port}-errors.log"
    argv = [
        sipp_binary(), "-sf", str(SCENARIOS / scenario), "-i", source, "-p", str(port),
        "-s", service, "-m", str(calls), "-r", str(rate), "-nostdin", "-trace_err",
        "-error_file", str(errors), "-timeout", f"{int(timeout_s)}s", "-timeout_error",
        *extra, target,
    ]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout_s + 15, check=False, cwd=workdir
    )
    text = errors.read_text(errors="replace") if errors.exists() else ""
    return SippResult(proc.returncode, proc.stdout + proc.stderr, text)
