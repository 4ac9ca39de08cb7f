"""Load phases: who presses a key, and per-call edge times from SIPp's marks."""

from __future__ import annotations

import pytest

from tests.harness.perf.load import Timeline, callers
from tests.harness.sipp import Mark


def test_key_callers_are_spread_evenly_and_numbers_are_distinct() -> None:
    people = callers(10, 0.5, "1201")

    assert [mode for _, mode in people] == ["silent", "key"] * 5
    assert len({n for n, _ in people}) == 10
    assert people[0][0] == "+628120100000"
    assert [m for _, m in callers(3, 1.0, "1201")] == ["key"] * 3
    assert [m for _, m in callers(3, 0.0, "1201")] == ["silent"] * 3


def test_timeline_lines_up_caller_marks_with_the_first_ring() -> None:
    caller = [
        Mark("invite", "a", 100.0), Mark("answered", "a", 100.004),
        Mark("invite", "b", 100.5), Mark("answered", "b", 100.503), Mark("key", "b", 101.0),
        Mark("invite", "c", 101.0),  # never answered
    ]
    rings = [
        Mark("ring", "b", 101.2), Mark("ring", "a", 110.8), Mark("ring", "b", 130.0),
        Mark("ring", "someone-else", 105.0),
    ]
    line = Timeline.of(caller, rings)

    assert line.setup_ms() == pytest.approx([4.0, 3.0], abs=1e-6)
    assert line.ring_s(["a", "b", "c"]) == pytest.approx([10.8, 0.7])
    assert line.key_to_ring_s() == pytest.approx([0.2])
    assert "someone-else" not in line.ring
