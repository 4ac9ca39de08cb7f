"""The project's one percentile: nearest rank, so that every figure is a value that was seen
(an answer time some call had, a command time some command took)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def nearest_rank(ordered: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank `fraction` (0.95 for p95) of ascending `ordered`; None when empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
