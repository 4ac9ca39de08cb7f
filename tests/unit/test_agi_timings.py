"""Per-command round-trip timing samples."""

from __future__ import annotations

import threading

from telephony.agi import CommandTimings


def test_nearest_rank_percentiles() -> None:
    timings = CommandTimings()
    for ms in range(1, 101):
        timings.record("set variable", ms / 1000)

    stats = timings.stats("SET VARIABLE")

    assert stats is not None
    assert (stats.count, stats.p50, stats.p95, stats.p99, stats.max) == (
        100, 0.05, 0.095, 0.099, 0.1,
    )
    assert timings.stats("EXEC") is None


def test_samples_are_bounded_and_clearable() -> None:
    timings = CommandTimings(samples_per_command=3)
    for value in (1.0, 2.0, 3.0, 4.0):
        timings.record("EXEC", value)

    assert timings.samples("EXEC") == [2.0, 3.0, 4.0]
    assert set(timings.summary()) == {"EXEC"}
    timings.clear()
    assert timings.summary() == {}


def test_concurrent_recording_loses_nothing() -> None:
    timings = CommandTimings()

    def record_many() -> None:
        for _ in range(1000):
            timings.record("NOOP", 0.001)

    threads = [threading.Thread(target=record_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stats = timings.stats("NOOP")
    assert stats is not None and stats.count == 8000
