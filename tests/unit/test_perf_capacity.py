"""The capacity search: double until a trial fails, then halve the interval."""

from __future__ import annotations

from collections.abc import Callable

from tests.harness.perf.capacity import Search, Trial, find, next_rate

SEARCH = Search(start_cps=5, window_s=10, hold_s=5, key_share=1.0, max_cps=100,
                resolution_cps=1, max_steps=10)  # fmt: skip


def system_that_fails_above(limit: float) -> tuple[list[float], Callable[[float], Trial]]:
    tried: list[float] = []

    def trial(rate: float) -> Trial:
        tried.append(rate)
        return Trial(rate, rate <= limit)

    return tried, trial


def test_doubles_then_bisects_to_the_resolution() -> None:
    tried, trial = system_that_fails_above(23)

    found = find(trial, SEARCH)

    assert tried[:4] == [5, 10, 20, 40]
    assert found.rate_cps <= 23 < (found.failing_cps or 0)
    assert (found.failing_cps or 0) - found.rate_cps <= SEARCH.resolution_cps
    assert len(found.trials) == len(tried) <= SEARCH.max_steps


def test_stops_at_the_ceiling_when_nothing_fails() -> None:
    tried, trial = system_that_fails_above(1000)

    found = find(trial, SEARCH)

    assert tried == [5, 10, 20, 40, 80]
    assert (found.rate_cps, found.failing_cps) == (80, None)


def test_first_trial_failing_still_searches_below_it() -> None:
    tried, trial = system_that_fails_above(2)

    found = find(trial, SEARCH)

    assert tried[:2] == [5, 2.5]
    assert found.rate_cps <= 2 and found.failing_cps is not None


def test_step_budget_bounds_the_search() -> None:
    tried, trial = system_that_fails_above(23)
    short = Search(**{**SEARCH.as_dict(), "max_steps": 3})

    found = find(trial, short)

    assert len(tried) == 3 and found.rate_cps == 20


def test_time_budget_bounds_the_search() -> None:
    tried, trial = system_that_fails_above(23)
    now = [0.0]

    def clock() -> float:
        now[0] += 100.0  # every look at the clock is a trial later
        return now[0]

    found = find(trial, Search(**{**SEARCH.as_dict(), "budget_s": 250}), clock)

    assert tried == [5, 10, 20] and found.cut_short and found.rate_cps == 20
    assert found.as_dict()["cut_short"] is True


def test_next_rate() -> None:
    assert next_rate(0, None, SEARCH) == 5
    assert next_rate(40, None, SEARCH) == 80
    assert next_rate(80, None, SEARCH) is None
    assert next_rate(20, 40, SEARCH) == 30
    assert next_rate(22, 23, SEARCH) is None


def test_sip_only_rate_is_reported_beside_the_stricter_search() -> None:
    def trial(rate: float) -> Trial:
        # No SIP failure at any rate, but calls fail open from 12 calls/s.
        return Trial(rate, rate < 12, {"failed": 0, "failed_open": int(rate >= 12)})

    found = find(trial, SEARCH)

    assert found.rate_cps < 12 <= (found.failing_cps or 0)
    assert found.sip_rate_cps == 20 and found.as_dict()["sip_only_rate_cps"] == 20
