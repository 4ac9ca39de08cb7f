"""CPU and memory sampling from /proc."""

from __future__ import annotations

import os

import pytest

from tests.harness.perf import usage


def stat_line(comm: str, utime: int, stime: int, rss_pages: int) -> str:
    after = ["S", *["0"] * 10, str(utime), str(stime), *["0"] * 8, str(rss_pages), "0"]
    return f"1234 ({comm}) {' '.join(after)}"


def test_stat_line_with_spaces_and_parentheses_in_the_name() -> None:
    reading = usage.parse_stat(stat_line("ld (weird) name", 250, 50, 1000), at=1.0)

    assert reading.cpu_s == pytest.approx(300 / usage.CLOCK_TICKS)
    assert reading.rss_bytes == 1000 * usage.PAGE_BYTES
    assert reading.at == 1.0


def test_usage_is_mean_and_peak_over_the_window() -> None:
    mb = 1024 * 1024
    readings = [
        usage.Reading(0.0, 10.0, 100 * mb),
        usage.Reading(1.0, 10.5, 120 * mb),
        usage.Reading(2.0, 11.5, 110 * mb),
    ]
    found = usage.usage_of(readings)

    assert found is not None
    assert found.cpu_percent == pytest.approx(75.0)
    assert found.cpu_peak_percent == pytest.approx(100.0)
    assert (found.rss_start_mb, found.rss_peak_mb, found.rss_end_mb) == (100, 120, 110)
    assert found.rss_growth_mb == 10
    assert usage.usage_of(readings[:1]) is None


def test_sampler_reads_a_live_process_and_ignores_a_gone_one() -> None:
    sampler = usage.Sampler({"me": os.getpid(), "gone": 2**22 + 12345}, interval_s=0.05)
    sampler.start()
    sum(i * i for i in range(200_000))  # something to measure
    found = sampler.stop()

    assert set(found) == {"me"}
    assert found["me"].rss_end_mb > 0
