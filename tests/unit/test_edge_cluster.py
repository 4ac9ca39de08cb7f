"""The edge in front of several Asterisk nodes: what a cluster file changes in kamailio.cfg
and the dispatcher list (rendering only; tests/integration/cluster runs it)."""

from __future__ import annotations

import re
from pathlib import Path

from telephony.config import load
from telephony.edge import dispatch
from telephony.edge.render import MARKER, EdgeLayout, is_ours, render
from telephony.resources import shipped


def _files(tmp_path: Path, *overrides: str) -> tuple[EdgeLayout, dict[Path, str]]:
    config = load(None, env={}, overrides=[f"cluster.file={tmp_path / 'none.toml'}", *overrides])
    layout = EdgeLayout(tmp_path / "kamailio")
    return layout, render(config, layout)


def _cluster(tmp_path: Path) -> tuple[EdgeLayout, dict[Path, str]]:
    return _files(tmp_path, f"cluster.file={shipped('config/cluster.example.toml')}")


def _defines(cfg: str) -> dict[str, str]:
    return dict(re.findall(r"^#!define (\w+) ?(.*)$", cfg, re.MULTILINE))


def test_a_single_node_has_no_dispatcher_and_relays_to_its_asterisk(tmp_path: Path) -> None:
    layout, files = _files(tmp_path)
    cfg = files[layout.cfg]
    assert layout.dispatcher not in files and "CLUSTER" not in _defines(cfg)
    assert _defines(cfg)["RELAY_TIMEOUT_MS"] == str(dispatch.RELAY_TIMEOUT_MS)


def test_a_cluster_renders_its_sets_and_the_probing_settings_from_python(
    tmp_path: Path,
) -> None:
    layout, files = _cluster(tmp_path)
    defines = _defines(files[layout.cfg])
    assert "CLUSTER" in defines and defines["ALL_NODES"] == "3"
    assert defines["DISPATCHER_LIST"] == f'"{layout.dispatcher}"'
    assert {name: int(defines[name]) for name in (
        "PING_INTERVAL_S", "PROBE_TIMEOUT_MS", "PROBES_TO_DOWN", "PROBES_TO_UP",
        "NODE_ANSWER_MS", "RELAY_TIMEOUT_MS")} == {
        "PING_INTERVAL_S": dispatch.PING_INTERVAL_S,
        "PROBE_TIMEOUT_MS": dispatch.PROBE_TIMEOUT_MS,
        "PROBES_TO_DOWN": dispatch.PROBES_TO_DOWN,
        "PROBES_TO_UP": dispatch.PROBES_TO_UP,
        "NODE_ANSWER_MS": dispatch.NODE_ANSWER_MS,
        "RELAY_TIMEOUT_MS": dispatch.RELAY_TIMEOUT_MS,
    }  # fmt: skip
    assert defines["PROBE_HEADER"] == '"X-Telephony-Trunk: mno\\r\\n"'
    assert "listen=udp:127.0.0.1:5066" in files[layout.cfg]
    listed = files[layout.dispatcher]
    assert listed.startswith(f"{MARKER}\n")
    assert "3 sip:112@127.0.0.12:5080 8 1 duid=b" in listed.splitlines()


def test_the_dispatcher_list_is_a_file_telephony_wrote(tmp_path: Path) -> None:
    layout, files = _cluster(tmp_path)
    layout.conf.mkdir(parents=True)
    layout.dispatcher.write_text(files[layout.dispatcher])
    assert is_ours(layout.dispatcher)


def test_in_a_cluster_no_request_goes_to_the_single_asterisk(tmp_path: Path) -> None:
    """Every `$du = ASTERISK` and `$si != ASTERISK_IP` sits in the single node's branch of an
    `#!ifdef CLUSTER`: in a cluster, requests go to the node of their set or dialog."""
    layout, files = _cluster(tmp_path)
    stack: list[str] = []
    found = 0
    for line in files[layout.cfg].splitlines():
        if line.startswith("#!ifdef") or line.startswith("#!ifndef"):
            stack.append(line)
        elif line.startswith("#!else"):
            stack[-1] = f"{stack[-1]} else"
        elif line.startswith("#!endif"):
            stack.pop()
        elif not line.lstrip().startswith("#") and (
            "$du = ASTERISK" in line or "ASTERISK_IP" in line
        ):
            found += 1
            assert "#!ifdef CLUSTER else" in stack, line
    assert found == 5


def _route(cfg: str, name: str) -> str:
    """The body of `route[name]` in the rendered kamailio.cfg."""
    found = re.search(rf"^route\[{name}\] \{{\n(.*?)^\}}", cfg, re.MULTILINE | re.DOTALL)
    assert found, f"no route[{name}]"
    return found.group(1)


def test_a_cluster_offers_an_operator_one_call_and_never_counts_a_qualify(
    tmp_path: Path,
) -> None:
    """The operators' profile and the 486's reason phrase come from Python; only an INVITE
    to an operator passes route[OPERATOR_FREE], never Asterisk's qualify (OPTIONS)."""
    layout, files = _cluster(tmp_path)
    cfg = files[layout.cfg]
    defines = _defines(cfg)
    assert defines["OPERATOR_PROFILE"] == f'"{dispatch.OPERATOR_PROFILE}"'
    assert defines["OPERATOR_BUSY"] == f'"{dispatch.OPERATOR_BUSY_REASON}"'
    assert 't_reply("486", OPERATOR_BUSY);' in _route(cfg, "OPERATOR_FREE")
    to_phone = _route(cfg, "TO_PHONE")
    qualify, _, invite = to_phone.partition('if (is_method("OPTIONS")) {')[2].partition("} else {")
    assert "OPERATOR_FREE" not in qualify and "route(OPERATOR_FREE);" in invite.split("}")[0]
    # A single node has no profile: its one Asterisk's ringinuse=no is all there is.
    single_layout, single = _files(tmp_path / "single")
    assert "OPERATOR_PROFILE" not in _defines(single[single_layout.cfg])
