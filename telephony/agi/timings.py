"""Round-trip times of AGI commands, kept in memory for benchmarks and health checks."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from telephony.percentile import nearest_rank

# Enough for a benchmark run; older samples fall off so a long-running service stays bounded.
DEFAULT_SAMPLES_PER_COMMAND = 10_000


@dataclass(frozen=True)
class TimingStats:
    """Summary of one command's round trips, in seconds."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float


class CommandTimings:
    """Thread-safe per-command samples of monotonic round-trip durations.

    The key is the AGI command verb (e.g. "STREAM FILE"); note that commands that play
    audio or wait for DTMF include that time, so latency benchmarks should look at
    "GET FULL VARIABLE" and "SET VARIABLE".
    """

    def __init__(self, samples_per_command: int = DEFAULT_SAMPLES_PER_COMMAND) -> None:
        self._limit = samples_per_command
        self._samples: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def record(self, command: str, seconds: float) -> None:
        key = command.strip().upper()
        with self._lock:
            samples = self._samples.get(key)
            if samples is None:
                samples = self._samples[key] = deque(maxlen=self._limit)
            samples.append(seconds)

    def samples(self, command: str) -> list[float]:
        with self._lock:
            return list(self._samples.get(command.strip().upper(), ()))

    def stats(self, command: str) -> TimingStats | None:
        """Nearest-rank percentiles of one command, or None when it was never recorded."""
        ordered = sorted(self.samples(command))
        if not ordered:
            return None
        return TimingStats(
            count=len(ordered),
            p50=_percentile(ordered, 50),
            p95=_percentile(ordered, 95),
            p99=_percentile(ordered, 99),
            max=ordered[-1],
        )

    def summary(self) -> dict[str, TimingStats]:
        with self._lock:
            commands = list(self._samples)
        return {command: stats for command in commands if (stats := self.stats(command))}

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()


def _percentile(ordered: list[float], percent: int) -> float:
    value = nearest_rank(ordered, percent / 100)
    assert value is not None  # stats() never asks about an empty list
    return value
