from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from telephony.location import load_regions
from telephony.operators.presence import Member, Presence, State, plan
from telephony.operators.roster import (
    RosterError,
    add_operator,
    ha1,
    load_roster,
    memberships,
    remove_operator,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"
REGIONS = load_regions(CONFIG / "regions.toml")


def test_ha1_is_the_digest_pjsip_md5_cred_expects() -> None:
    # echo -n op3507:112:demo-3507 | md5sum
    assert ha1("op3507", "demo-3507") == "047c5df9a4b714857c50232d98efa332"


def test_demo_roster_loads_and_derives_memberships() -> None:
    roster = {op.id: op for op in load_roster(CONFIG / "operators.toml", REGIONS)}
    assert set(roster) == {"op3507", "op3573", "op3578"}
    kota_malang = memberships(roster["op3573"], REGIONS)
    assert kota_malang[:2] == ("reg-3573", "ovf-3573")
    # Kab. Malang (35.07) is Kota Malang's launched neighbour: its overflow rings op3573 too.
    assert "ovf-3507" in kota_malang
    assert kota_malang[-1] == "prov-35"


def test_add_stores_only_the_digest_keeps_comments_and_remove_deletes(tmp_path: Path) -> None:
    path = tmp_path / "operators.toml"
    path.write_text("# the centre's roster\n")
    op = add_operator(path, REGIONS, "new1", "35.78", "s3cret-pass", "New One")
    text = path.read_text()
    assert "# the centre's roster" in text
    assert "s3cret-pass" not in text and op.ha1 in text
    assert [o.id for o in load_roster(path, REGIONS)] == ["new1"]
    with pytest.raises(RosterError, match="already exists"):
        add_operator(path, REGIONS, "new1", "35.78", "another-pass", None)
    remove_operator(path, "new1")
    assert load_roster(path, REGIONS) == ()
    with pytest.raises(RosterError, match="no operator"):
        remove_operator(path, "new1")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('id = "X"\nregency = "35.07"\npassword = "p"', "id 'X'"),
        ('id = "ok1"\nregency = "99.99"\npassword = "p"', "regency '99.99'"),
        ('id = "ok1"\nregency = "35.07"', "needs ha1"),
        ('id = "ok1"\nregency = "35.07"\npassword = "p"\nlanguages = ["fr"]', "languages"),
    ],
)
def test_bad_roster_entries_are_named(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "operators.toml"
    path.write_text(f"[[operator]]\n{entry}\n")
    with pytest.raises(RosterError, match=message) as err:
        load_roster(path, REGIONS)
    assert str(path) in str(err.value)


def _presence(op: str, state: State, reason: str | None = None) -> Presence:
    return Presence(operator_id=op, state=state.value, pause_reason=reason,
                    updated_at=datetime.now(UTC))


def test_plan_adds_pauses_and_removes_until_asterisk_matches_the_database() -> None:
    roster = load_roster(CONFIG / "operators.toml", REGIONS)
    queues = {"reg-3573", "ovf-3573", "ovf-3507", "prov-35", "reg-3578", "ovf-3578"}
    states = {
        "op3573": _presence("op3573", State.PAUSED, "break"),
        "op3578": _presence("op3578", State.LOGGED_OUT),
    }
    live = [
        Member("reg-3573", "PJSIP/op3573", paused=False),
        Member("reg-3578", "PJSIP/op3578", paused=False),
    ]
    actions = plan(roster, states, live, REGIONS, queues)
    by_name: dict[str, list[dict[str, str]]] = {}
    for action in actions:
        by_name.setdefault(action.name, []).append(dict(action.fields))
    assert by_name["QueuePause"] == [{"Queue": "reg-3573", "Interface": "PJSIP/op3573",
                                      "Paused": "true", "Reason": "break"}]
    added = {(a["Queue"], a["Paused"]) for a in by_name["QueueAdd"]}
    assert added == {("ovf-3573", "true"), ("ovf-3507", "true"), ("prov-35", "true")}
    assert by_name["QueueRemove"] == [{"Queue": "reg-3578", "Interface": "PJSIP/op3578"}]
    # Once Asterisk matches, there is nothing left to do.
    matched = [Member(a["Queue"], a["Interface"], a["Paused"] == "true")
               for a in by_name["QueueAdd"]] + [Member("reg-3573", "PJSIP/op3573", True)]
    assert plan(roster, states, matched, REGIONS, queues) == []
