"""Capacity: the highest call rate with zero failed calls over a fixed window.

RFC 7501 terms: a session attempt is an INVITE; it fails when no 200 OK establishes it (or
its BYE is not answered). RFC 7502's session establishment rate is found by trials at a
rate r for a fixed duration, raising r after a clean trial and lowering it after a failed
one; here r doubles until a trial fails, then the interval between the best clean and the
worst failed rate is halved until it is narrower than ``resolution`` or the steps run out.
Our own stricter rule is added: a call that failed open skipped the IVR, so it fails too.
The baseline's centre is searched with the same rule in the same run (it cannot fail open,
so its figure is RFC 7502's). A search is bounded by ``max_steps`` and by ``budget_s``: no
trial starts once the budget is spent, and the figure says the search was cut short.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Search:
    start_cps: float
    window_s: float
    hold_s: float
    key_share: float
    max_cps: float
    resolution_cps: float
    max_steps: int
    budget_s: float = 1800.0
    """No trial starts after this long since the first (each costs window + hold + drain)."""

    def as_dict(self) -> dict[str, Any]:
        return {"start_cps": self.start_cps, "window_s": self.window_s, "hold_s": self.hold_s,
                "key_share": self.key_share, "max_cps": self.max_cps,
                "resolution_cps": self.resolution_cps, "max_steps": self.max_steps,
                "budget_s": self.budget_s}  # fmt: skip


@dataclass(frozen=True)
class Trial:
    rate_cps: float
    passed: bool
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Capacity:
    rate_cps: float
    """The best clean rate; 0 when even the first trial failed."""
    failing_cps: float | None
    """The lowest rate that failed, if any trial did."""
    trials: tuple[Trial, ...]
    search: Search
    cut_short: bool = False
    """The time budget ended the search before the resolution was reached."""

    @property
    def sip_rate_cps(self) -> float:
        """RFC 7502's criterion alone: the best trial without a SIP failure (a lower bound
        when every trial passed it, since the search followed the stricter rule)."""
        return max((t.rate_cps for t in self.trials if t.detail.get("failed") == 0), default=0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate_cps": self.rate_cps,
            "failing_cps": self.failing_cps,
            "sip_only_rate_cps": self.sip_rate_cps,
            "cut_short": self.cut_short,
            "conditions": self.search.as_dict(),
            "trials": [{"rate_cps": t.rate_cps, "passed": t.passed, **t.detail}
                       for t in self.trials],
        }  # fmt: skip


def next_rate(best: float, worst: float | None, search: Search) -> float | None:
    """The next trial's rate, or None when the search is done."""
    if worst is None:
        rate = search.start_cps if best == 0 else best * 2
        return rate if rate <= search.max_cps else None
    if worst - best <= search.resolution_cps:
        return None
    return round((best + worst) / 2, 2)


def find(
    trial: Callable[[float], Trial],
    search: Search,
    clock: Callable[[], float] = time.monotonic,
) -> Capacity:
    best, worst = 0.0, None
    trials: list[Trial] = []
    rate: float | None = search.start_cps
    started = clock()
    while rate is not None and len(trials) < search.max_steps:
        if trials and clock() - started >= search.budget_s:
            return Capacity(best, worst, tuple(trials), search, cut_short=True)
        result = trial(rate)
        trials.append(result)
        if result.passed:
            best = max(best, rate)
        else:
            worst = rate if worst is None else min(worst, rate)
        if worst is not None and best == 0 and worst <= search.resolution_cps:
            break
        rate = next_rate(best, worst, search)
    return Capacity(best, worst, tuple(trials), search)
