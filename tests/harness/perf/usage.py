"""CPU and memory of the processes under test, read from /proc (no psutil).

CPU is utime + stime of the whole process (all its threads) from /proc/<pid>/stat, as a
percentage of one core over the sampled window; memory is the resident set size. A process
that exits mid-run keeps the figures it had.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# /proc/<pid>/stat fields after the parenthesised command name: utime, stime and rss are
# fields 14, 15 and 24 of proc(5), i.e. 11, 12 and 21 counted from the state field.
_UTIME, _STIME, _RSS = 11, 12, 21


@dataclass(frozen=True)
class Reading:
    at: float
    cpu_s: float
    rss_bytes: int


def parse_stat(text: str, at: float = 0.0) -> Reading:
    """One /proc/<pid>/stat line; the command name may itself hold spaces and parentheses."""
    fields = text[text.rindex(")") + 2 :].split()
    cpu = (int(fields[_UTIME]) + int(fields[_STIME])) / CLOCK_TICKS
    return Reading(at, cpu, int(fields[_RSS]) * PAGE_BYTES)


def read(pid: int) -> Reading | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return parse_stat(text, time.monotonic())


def _parent(entry: Path) -> int | None:
    try:
        text = (entry / "stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[1])


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of `pid` and its direct children: Kamailio's work is done in the SIP
    worker processes it forks, not in the main one."""
    pids = [pid] + [int(e.name) for e in Path("/proc").iterdir()
                    if e.name.isdigit() and _parent(e) == pid]  # fmt: skip
    return sum(r.cpu_s for p in pids if (r := read(p)) is not None)


@dataclass(frozen=True)
class Usage:
    cpu_percent: float
    """Mean over the window; 100 is one core."""
    cpu_peak_percent: float
    """Highest over any one sampling interval."""
    rss_start_mb: float
    rss_end_mb: float
    rss_peak_mb: float

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_start_mb

    def as_dict(self) -> dict[str, float]:
        return {
            "cpu_percent": round(self.cpu_percent, 1),
            "cpu_peak_percent": round(self.cpu_peak_percent, 1),
            "rss_start_mb": round(self.rss_start_mb, 1),
            "rss_end_mb": round(self.rss_end_mb, 1),
            "rss_peak_mb": round(self.rss_peak_mb, 1),
            "rss_growth_mb": round(self.rss_growth_mb, 1),
        }


def usage_of(readings: list[Reading]) -> Usage | None:
    if len(readings) < 2:
        return None
    first, last = readings[0], readings[-1]
    span = last.at - first.at
    peaks = [
        (b.cpu_s - a.cpu_s) / (b.at - a.at)
        for a, b in itertools.pairwise(readings)
        if b.at > a.at
    ]
    mb = 1024 * 1024
    return Usage(
        cpu_percent=100 * (last.cpu_s - first.cpu_s) / span if span > 0 else 0.0,
        cpu_peak_percent=100 * max(peaks, default=0.0),
        rss_start_mb=first.rss_bytes / mb,
        rss_end_mb=last.rss_bytes / mb,
        rss_peak_mb=max(r.rss_bytes for r in readings) / mb,
    )


@dataclass
class Sampler:
    """Samples named pids every ``interval_s`` on a thread, from start() until stop()."""

    pids: Mapping[str, int]
    interval_s: float = 1.0
    readings: dict[str, list[Reading]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="usage-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Usage]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval_s + 5)
        self._sample()
        return {name: u for name, rs in self.readings.items() if (u := usage_of(rs))}

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            reading = read(pid)
            if reading is not None:
                self.readings.setdefault(name, []).append(reading)
