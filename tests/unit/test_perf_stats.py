"""Percentile summaries of the bench's samples."""

from __future__ import annotations

import pytest

from tests.harness.perf.stats import percentile, summarize


def test_nearest_rank_percentiles_are_values_that_were_seen() -> None:
    summary = summarize(float(n) for n in range(100, 0, -1))

    assert summary is not None
    assert (summary.count, summary.p50, summary.p95, summary.p99, summary.max) == (
        100, 50.0, 95.0, 99.0, 100.0,
    )
    assert summary.mean == pytest.approx(50.5)


def test_few_samples_and_none() -> None:
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0], 50) == 1.0
    assert percentile([1.0, 2.0], 51) == 2.0
    assert summarize([]) is None
    with pytest.raises(ValueError):
        percentile([], 50)


def test_as_dict_rounds_floats_only() -> None:
    summary = summarize([1 / 3, 2 / 3])
    assert summary is not None
    assert summary.as_dict(3) == {
        "count": 2, "p50": 0.333, "p95": 0.667, "p99": 0.667, "max": 0.667, "mean": 0.5,
    }
