"""`scripts/bench --pin`: the load generators on one core, the platform on the other.

On a two-core machine the SIPp callers and operators otherwise compete with Asterisk and
``serve`` for the same cores, and the bench partly measures itself. Pinned, the callers' and
operators' SIPp and the bench's own process run on ``load`` and Asterisk and ``serve`` on
``platform``. The affinity is set on every thread a process has (``taskset -a``); threads
it starts later inherit it from theirs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


class PinError(Exception):
    """Fewer than two CPUs to split, or an affinity the kernel refused."""


@dataclass(frozen=True)
class Pinning:
    load: frozenset[int]
    platform: frozenset[int]

    def as_dict(self) -> dict[str, list[int]]:
        return {"load_cpus": sorted(self.load), "platform_cpus": sorted(self.platform)}


def split() -> Pinning:
    """The first usable CPU for the load, the others for the platform."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise PinError(f"--pin needs two CPUs, this process may use {cpus}")
    return Pinning(frozenset(cpus[:1]), frozenset(cpus[1:]))


def pin(pid: int, cpus: Iterable[int]) -> None:
    """Every thread of ``pid`` and of its child processes onto ``cpus``; a process that has
    just exited is skipped."""
    wanted = set(cpus)
    try:
        threads = [int(name) for name in os.listdir(Path("/proc") / str(pid) / "task")]
    except FileNotFoundError:
        return
    for tid in threads:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(tid, wanted)
        # Kamailio's workers are processes forked at its start, before it could be pinned.
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            children = (Path("/proc") / str(pid) / "task" / str(tid) / "children").read_text()
            for child in children.split():
                pin(int(child), wanted)


@contextlib.contextmanager
def bench_on(cpus: Iterable[int]) -> Iterator[None]:
    """The bench's own process (its threads too) on ``cpus`` for a while, then as before."""
    before = os.sched_getaffinity(0)
    pin(os.getpid(), cpus)
    try:
        yield
    finally:
        pin(os.getpid(), before)
