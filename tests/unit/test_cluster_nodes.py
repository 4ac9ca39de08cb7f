"""config/cluster.toml and the dispatcher list rendered from it (pure code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from telephony import config
from telephony.cluster.nodes import ClusterError, dispatcher_list, load, node_config
from telephony.resources import shipped


def test_a_single_node_has_no_cluster_file(tmp_path: Path) -> None:
    assert load(tmp_path / "cluster.toml") is None


def test_each_regency_gets_a_set_with_its_home_node_first() -> None:
    cluster = load(shipped("config/cluster.example.toml"))
    assert cluster is not None
    rows = [line for line in dispatcher_list(cluster).splitlines() if not line.startswith("#")]
    assert rows == [
        "1 sip:112@127.0.0.11:5080 8 2 duid=a;regency=35.73",
        "1 sip:112@127.0.0.12:5080 8 1 duid=b;regency=35.73",
        "2 sip:112@127.0.0.12:5080 8 2 duid=b;regency=35.78",
        "2 sip:112@127.0.0.11:5080 8 1 duid=a;regency=35.78",
        # Every node, for a call whose regency the edge cannot tell.
        "3 sip:112@127.0.0.11:5080 8 2 duid=a",
        "3 sip:112@127.0.0.12:5080 8 1 duid=b",
    ]
    assert cluster.all_set == 3


@pytest.mark.parametrize(("text", "says"), [
    ('[[node]]\nname = "a"\naddress = "127.0.0.11"\n', "two or more"),
    ('[[node]]\nname = "a"\naddress = "x"\n[[node]]\nname = "b"\naddress = "127.0.0.12"\n',
     "not an IP"),
    ('[[node]]\nname = "a"\naddress = "127.0.0.11"\n[[node]]\nname = "b"\n'
     'address = "127.0.0.12"\n[[regency]]\ncode = "35.73"\nhome = "a"\nbackup = "a"\n',
     "two different nodes"),
])
def test_a_bad_file_is_refused_naming_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    with pytest.raises(ClusterError, match=says):
        load(path)


def test_a_node_config_differs_only_in_its_addresses_and_files() -> None:
    cluster = load(shipped("config/cluster.example.toml"))
    assert cluster is not None
    base = config.load(env={})
    a, b = (node_config(base, cluster, name) for name in ("a", "b"))
    assert (a.asterisk.sip_bind, a.agi.bind, a.health.bind) == ("127.0.0.11",) * 3
    assert b.asterisk.ami_bind == "127.0.0.12" and b.cluster.node == "b"
    assert a.audit.spool_path != b.audit.spool_path
    assert a.asterisk.runtime_dir.endswith("nodes/a/asterisk")
    assert a.ivr == b.ivr == base.ivr and a.operators == base.operators


def test_an_unknown_node_is_refused_by_name() -> None:
    cluster = load(shipped("config/cluster.example.toml"))
    assert cluster is not None
    with pytest.raises(ClusterError, match="'c' is not a node"):
        node_config(config.load(env={}), cluster, "c")
