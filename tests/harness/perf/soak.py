"""`scripts/bench --soak`: about 300 calls up at once for 10 minutes, for leaks and drift.

Calls of a minute each arrive at 5 per second, so after the first minute about 300 are up
at any time, for 10 minutes (3000 calls). What is reported: each process's RSS growth over
the run per 1000 calls placed (Asterisk and ``serve``), and whether the audit lag stays
flat: the writer's receive-to-commit lag is cut into ``SLICES`` consecutive slices in
arrival order, and the lag is flat when the last slice's p99 is within ``DRIFT`` times the
first's (plus ``SLACK_MS``, for a first slice that is nearly idle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tests.harness.perf.stats import summarize

SLICES = 10
DRIFT = 2.0
SLACK_MS = 100.0


def rss_per_1000_calls(usage: Mapping[str, Any], calls: int) -> dict[str, float | None]:
    """MB of RSS growth per 1000 calls placed, per sampled process."""
    found: dict[str, float | None] = {}
    for name, figures in usage.items():
        growth = figures.get("rss_growth_mb")
        found[name] = round(growth * 1000 / calls, 2) if growth is not None and calls else None
    return found


def lag_drift(samples: Sequence[float], slices: int = SLICES) -> dict[str, Any]:
    """The lag's p50/p99 per slice of the run, and whether its p99 stayed flat."""
    if len(samples) < slices:
        return {"slices": [], "flat": None}
    size = len(samples) // slices
    parts = [samples[n * size : (n + 1) * size] for n in range(slices)]
    figures = [summary.as_dict(1) for part in parts if (summary := summarize(part))]
    first, last = figures[0]["p99"], figures[-1]["p99"]
    return {"slices": [{"p50": f["p50"], "p99": f["p99"]} for f in figures],
            "flat": last <= DRIFT * first + SLACK_MS}  # fmt: skip
