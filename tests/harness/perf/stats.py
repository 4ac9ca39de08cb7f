"""Percentiles of measured samples, the one way every figure in a result is summarised."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from telephony.percentile import nearest_rank


@dataclass(frozen=True)
class Summary:
    """Nearest-rank percentiles (no interpolation: every figure is a value that was seen)."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    def as_dict(self, digits: int = 6) -> dict[str, float | int]:
        return {k: (round(v, digits) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def percentile(ordered: list[float], percent: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty list (the audit report's)."""
    value = nearest_rank(ordered, percent / 100)
    if value is None:
        raise ValueError("percentile of no samples")
    return value


def summarize(samples: Iterable[float]) -> Summary | None:
    ordered = sorted(samples)
    if not ordered:
        return None
    return Summary(
        count=len(ordered),
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1],
        mean=math.fsum(ordered) / len(ordered),
    )
