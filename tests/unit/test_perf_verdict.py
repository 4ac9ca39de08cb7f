"""What the drills share: sizes, verdict lines, and waiting for conditions with no event."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from telephony.pbx.provision import AsteriskInstall
from tests.harness.perf.verdict import Context, DrillError, Verdict, wait_until

INSTALL = AsteriskInstall(("asterisk",), Path("/m"), Path("/d"), "Asterisk 22.0.0", "test")


def test_sizes_follow_the_mode_unless_the_count_is_given() -> None:
    assert Context(INSTALL, Path("/w"), quick=True).sized(8, 30) == 8
    assert Context(INSTALL, Path("/w"), quick=False).sized(8, 30) == 30
    assert Context(INSTALL, Path("/w"), quick=False, calls=3).sized(8, 30) == 3


def test_verdict_line() -> None:
    assert Verdict("agi-down", True, "8/8 rang").line() == "PASS agi-down: 8/8 rang"
    assert Verdict("flood", False, "97%").line() == "FAIL flood: 97%"


def test_wait_until_returns_when_true_and_raises_at_the_deadline() -> None:
    ticks = itertools.count()
    assert wait_until(lambda: next(ticks) >= 3, 5, "three ticks", poll_s=0.001) >= 0
    with pytest.raises(DrillError, match="never: not within 0s"):
        wait_until(lambda: False, 0.01, "never", poll_s=0.001)
