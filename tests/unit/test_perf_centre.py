"""The bench centre: its roster, and the pure-dialplan baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from telephony.location import load_regions
from telephony.operators.roster import ha1, load_roster
from tests.harness.perf.centre import REGENCY, accounts, baseline_dialplan, roster_text

REGIONS = Path(__file__).resolve().parents[2] / "config" / "regions.toml"
RENDERED = """\
[from-trunk-112]
exten => 112,1,Goto(emergency-112,s,1)

[emergency-112]
exten => s,1,Answer()
 same => n,AGI(agi://127.0.0.1:4573/ivr)
exten => queue,1,Queue(${TARGET_QUEUE})

[from-operator-112]
exten => _*8XXXX,1,Goto(emergency-112,queue,1)
"""


def test_roster_is_valid_and_all_in_one_regency(tmp_path: Path) -> None:
    path = tmp_path / "operators.toml"
    path.write_text(roster_text(3))

    roster = load_roster(path, load_regions(REGIONS))

    assert [op.id for op in roster] == ["bop001", "bop002", "bop003"]
    assert {op.regency for op in roster} == {REGENCY}
    assert [op.ha1 for op in roster] == [ha1(op, pw) for op, pw in accounts(3)]


def test_baseline_replaces_only_the_emergency_context() -> None:
    text = baseline_dialplan(RENDERED, "reg-3573")

    assert "AGI(" not in text
    assert "exten => s,1,Answer()\n same => n,Queue(reg-3573)\n" in text
    assert text.startswith("[from-trunk-112]\nexten => 112,1,Goto(emergency-112,s,1)\n")
    assert text.endswith("[from-operator-112]\nexten => _*8XXXX,1,Goto(emergency-112,queue,1)\n")
    with pytest.raises(ValueError):
        baseline_dialplan("[other]\n", "reg-3573")
