"""SIPp as callers and operators, for the tests and the bench: scenarios, runs, outputs.

Scenarios live in one folder, tests/integration/scenarios/, beside the tests; the bench's
have ``@{name}`` placeholders (SIPp itself owns ``[...]`` and ``$``). Every run gets its
own directory, so SIPp's per-pid files never mix:

- ``marks.log``: our ``<log>`` lines, ``kind;number;seconds;microseconds`` (gettimeofday),
  stamped at the edges: INVITE sent, 200 received, key pressed, operator rung;
- ``stats.csv`` (``-trace_stat -fd 1``): SIPp's counters, the last row cumulative;
- ``*_rtt.csv`` (``-trace_rtt``): one response time per call (INVITE to 200, in ms);
- ``errors.log``: unexpected messages and failures.
"""

from __future__ import annotations

import math
import re
import shutil
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.harness import CHECKOUT
from tests.harness.net import TRUNK, free_udp

SCENARIOS = CHECKOUT / "tests" / "integration" / "scenarios"
DTMF_PCAP = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")
_PLACEHOLDER = re.compile(r"@\{(\w+)\}")
# Cumulative counters of a -trace_stat file worth reporting when not zero.
_FAILURE_COUNTERS = (
    "FailedCannotSendMessage", "FailedMaxUDPRetrans", "FailedUnexpectedMessage",
    "FailedCallRejected", "FailedCmdNotSent", "FailedRegexpDoesntMatch",
    "FailedRegexpHdrNotFound", "FailedOutboundCongestion", "FailedTimeoutOnRecv",
    "FailedTimeoutOnSend", "FailedTestDoesntMatch", "FailedStrcmpDoesntMatch",
)  # fmt: skip
STOP_GRACE_S = 10.0


class SippError(Exception):
    """SIPp is missing, or a scenario cannot be rendered."""


def binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise SippError("sipp is not installed (Debian's sip-tester; scripts/test installs it)")
    return path


def render(name: str, dest: Path, **values: object) -> Path:
    """Write scenario ``name`` into ``dest`` with its placeholders filled in."""
    text = (SCENARIOS / name).read_text()
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(values))
    if missing:
        raise SippError(f"scenario {name} needs {', '.join(missing)}")
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / name
    path.write_text(_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text))
    return path


def ulaw(sample: int) -> int:
    """G.711 mu-law encoding of one 16-bit linear sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), clip) + bias
    exponent = min(7, max(0, magnitude.bit_length() - 8))
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def write_audio(path: Path, seconds: float = 2.0) -> Path:
    """Raw mu-law at 8 kHz (what rtp_stream sends as payload type 0): a quiet 440 Hz tone, so
    the stream carries real audio without ever looking like a DTMF digit."""
    samples = int(8000 * seconds)
    path.write_bytes(bytes(
        ulaw(int(1000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(samples)
    ))  # fmt: skip
    return path


@dataclass(frozen=True)
class Mark:
    kind: str
    number: str
    at: float
    """Seconds since the epoch, microsecond resolution."""


def parse_marks(lines: Iterable[str]) -> list[Mark]:
    """Our ``<log>`` lines; anything else SIPp writes there is skipped."""
    marks = []
    for line in lines:
        parts = line.strip().split(";")
        if len(parts) != 4:
            continue
        kind, number, seconds, micros = parts
        try:
            at = float(seconds) + float(micros) / 1e6
        except ValueError:
            continue
        marks.append(Mark(kind, number, at))
    return marks


@dataclass(frozen=True)
class Counts:
    """A SIPp run's cumulative call counters."""

    created: int
    successful: int
    failed: int
    current: int
    peak_current: int
    retransmissions: int
    failures: Mapping[str, int]
    """Non-zero failure counters by reason."""


def parse_stats(text: str) -> Counts | None:
    """The -trace_stat CSV: a header row, then one row per -fd period; the last is final."""
    rows = [line.split(";") for line in text.splitlines() if line.strip()]
    if len(rows) < 2:
        return None
    header = rows[0]
    table = [dict(zip(header, row, strict=False)) for row in rows[1:]]
    last = table[-1]

    def value(name: str, row: Mapping[str, str] = last) -> int:
        text = row.get(name, "0").strip() or "0"
        return int(float(text))

    created = value("OutgoingCall(C)") + value("IncomingCall(C)")
    failures = {name: n for name in _FAILURE_COUNTERS if (n := value(f"{name}(C)"))}
    return Counts(
        created=created,
        successful=value("SuccessfulCall(C)"),
        failed=value("FailedCall(C)"),
        current=value("CurrentCall"),
        peak_current=max(value("CurrentCall", row) for row in table),
        retransmissions=value("Retransmissions(C)"),
        failures=failures,
    )


def parse_rtt(text: str) -> list[float]:
    """The -trace_rtt CSV (``Date_ms;response_time_ms;rtd_no``): response times in ms."""
    times = []
    for line in text.splitlines()[1:]:
        parts = line.split(";")
        if len(parts) >= 2:
            try:
                times.append(float(parts[1]))
            except ValueError:
                continue
    return times


class Sipp:
    """One SIPp process with its own directory; bounded by SIPp's global -timeout."""

    def __init__(
        self,
        name: str,
        scenario: Path,
        target: str,
        *,
        source: str,
        port: int,
        workdir: Path,
        args: Sequence[str] = (),
        limit_s: float = 600.0,
    ) -> None:
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.limit_s = limit_s
        self.argv = [
            binary(), "-sf", str(scenario), "-i", source, "-p", str(port), "-nostdin",
            "-trace_logs", "-log_file", str(self.dir / "marks.log"),
            "-trace_err", "-error_file", str(self.dir / "errors.log"),
            "-trace_stat", "-stf", str(self.dir / "stats.csv"), "-fd", "1",
            "-trace_rtt", "-rtt_freq", "1",
            "-timeout", f"{math.ceil(limit_s)}s", "-timeout_error",
            *args, target,
        ]  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sipp:
        with (self.dir / "screen.txt").open("wb") as screen:
            self._proc = subprocess.Popen(
                self.argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=screen,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for SIPp to finish by itself (at most its -timeout, plus a margin)."""
        if self._proc is None:
            raise SippError(f"{self.name} was never started")
        limit = self.limit_s + STOP_GRACE_S if timeout is None else timeout
        try:
            return self._proc.wait(limit)
        except subprocess.TimeoutExpired:
            return self.stop()

    def stop(self) -> int:
        """SIGUSR1 makes SIPp stop and write its final statistics; then harder."""
        if self._proc is None:
            return 0
        for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGKILL):
            if self._proc.poll() is not None:
                break
            self._proc.send_signal(sig)
            try:
                self._proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                continue
        return self._proc.wait()

    def marks(self) -> list[Mark]:
        return parse_marks(_lines(self.dir / "marks.log"))

    def counts(self) -> Counts | None:
        path = self.dir / "stats.csv"
        return parse_stats(path.read_text(errors="replace")) if path.exists() else None

    def rtt_ms(self) -> list[float]:
        return [t for path in sorted(self.dir.glob("*_rtt.csv"))
                for t in parse_rtt(path.read_text(errors="replace"))]

    def errors(self, lines: int = 20) -> str:
        return "\n".join(_lines(self.dir / "errors.log")[-lines:])

    def screen(self) -> str:
        """What SIPp printed (its final screen and any complaint)."""
        return "\n".join(_lines(self.dir / "screen.txt"))


@dataclass(frozen=True)
class SippResult:
    returncode: int
    output: str
    errors: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_scenario(
    scenario: str,
    target: str,
    *,
    source: str = TRUNK,
    service: str = "112",
    calls: int = 1,
    rate: float = 1.0,
    timeout_s: float = 60.0,
    port: int | None = None,
    workdir: Path,
    extra: tuple[str, ...] = (),
) -> SippResult:
    """Place `calls` calls with scenario `scenario` (a file name in SCENARIOS) at `target`,
    and wait for SIPp to finish."""
    port = port or free_udp(source)
    run = Sipp(
        f"sipp-{scenario}-{port}", SCENARIOS / scenario, target, source=source, port=port,
        workdir=workdir, args=("-s", service, "-m", str(calls), "-r", str(rate), *extra),
        limit_s=timeout_s,
    )  # fmt: skip
    code = run.start().wait()
    return SippResult(code, run.screen(), "\n".join(_lines(run.dir / "errors.log")))


def _lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []
