"""The soak's figures (RSS per 1000 calls, audit lag drift) and the --pin CPU split."""

from __future__ import annotations

import os

import pytest

from tests.harness.perf import pinning, soak


def test_rss_growth_is_per_1000_calls_placed() -> None:
    usage = {"asterisk": {"rss_growth_mb": 30.0}, "serve": {"rss_growth_mb": 3.0}}

    assert soak.rss_per_1000_calls(usage, 3000) == {"asterisk": 10.0, "serve": 1.0}


def test_a_lag_that_climbs_is_not_flat() -> None:
    steady = [100.0] * 1000
    climbing = [100.0 + n for n in range(1000)]

    assert soak.lag_drift(steady)["flat"] is True
    drift = soak.lag_drift(climbing)
    assert drift["flat"] is False and len(drift["slices"]) == soak.SLICES
    assert drift["slices"][0]["p99"] < drift["slices"][-1]["p99"]
    assert soak.lag_drift([1.0, 2.0])["flat"] is None


def test_pin_splits_the_cpus_and_pins_every_thread() -> None:
    before = os.sched_getaffinity(0)
    if len(before) < 2:
        with pytest.raises(pinning.PinError):
            pinning.split()
        return
    split = pinning.split()
    assert split.load.isdisjoint(split.platform) and split.load | split.platform <= before
    with pinning.bench_on(split.load):
        assert os.sched_getaffinity(0) == split.load
    assert os.sched_getaffinity(0) == before
