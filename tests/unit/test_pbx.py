from __future__ import annotations

import re
from pathlib import Path

import pytest

from telephony.config import load
from telephony.pbx.layout import Layout
from telephony.pbx.provision import AsteriskInstall, parse_release, supported
from telephony.pbx.render import INCLUDE_FILES, render_sandbox
from tests.harness.sandbox import production_roster


@pytest.mark.parametrize(
    ("text", "release", "ok"),
    [
        ("Asterisk 22.10.1+dfsg+~cs6.17.60671434-1", (22, 10), True),
        ("Asterisk 22.1.0", (22, 1), False),
        ("Asterisk 21.7.0", (21, 7), True),
        ("Asterisk 20.11.2", (20, 11), False),
        ("Asterisk 20.12.0", (20, 12), True),
        ("Asterisk 23.0.0", (23, 0), True),
        ("Asterisk certified/18.9-cert7", (18, 9), False),
        ("Asterisk GIT-master-abc", (0, 0), False),
        ("", (0, 0), False),
    ],
)
def test_only_releases_with_qualify_2xx_only_are_supported(
    text: str, release: tuple[int, int], ok: bool
) -> None:
    assert parse_release(text) == release
    assert supported(text) is ok


def _render(tmp_path: Path, *overrides: str) -> dict[str, str]:
    config = load(None, env={}, overrides=[f"asterisk.runtime_dir={tmp_path}", *overrides])
    install = AsteriskInstall(("asterisk",), Path("/mods"), Path("/share"), "Asterisk 22.1", "t")
    return render_sandbox(config, install, Layout(tmp_path))


def test_every_writable_directory_is_inside_the_runtime_dir(tmp_path: Path) -> None:
    conf = _render(tmp_path)["asterisk.conf"]
    dirs = dict(re.findall(r"^(ast\w+dir) => (.*)$", conf, re.M))
    for key in ("astetcdir", "astrundir", "astlogdir", "astspooldir", "astdbdir"):
        assert dirs[key].startswith(str(tmp_path)), key
    assert dirs["astmoddir"] == "/mods"


def test_ports_trunk_and_timers_come_from_config(tmp_path: Path) -> None:
    files = _render(
        tmp_path, "asterisk.sip_port=5999", "asterisk.ami_port=5998",
        "asterisk.trunk_address=127.0.0.9", "asterisk.timer_t1=100",
    )
    assert "bind = 127.0.0.1:5999" in files["pjsip.conf"]
    assert "timer_t1 = 100" in files["pjsip.conf"] and "timer_b = 6400" in files["pjsip.conf"]
    assert "port = 5998" in files["manager.conf"]
    assert "match_header" in files["pjsip_112.conf"]  # behind the edge, the default
    direct = _render(tmp_path / "direct", "asterisk.trunk_address=127.0.0.9",
                     "edge.enabled=false", "location.pidf_lo=false")
    assert "match = 127.0.0.9" in direct["pjsip_112.conf"]


def test_asterisk_parses_the_trunks_pidf_lo_only_when_configured_to(tmp_path: Path) -> None:
    profile = "geoloc_incoming_call_profile = geoloc-112-in"
    # On by default (behind the edge); direct mode refuses it on (tests/unit/test_edge.py).
    assert profile in _render(tmp_path / "default")["pjsip_112.conf"]
    off = _render(tmp_path / "off", "location.pidf_lo=false")["pjsip_112.conf"]
    assert profile not in off


def test_no_anonymous_endpoint_and_main_files_include_ours(tmp_path: Path) -> None:
    files = _render(tmp_path)
    assert "anonymous" not in files["pjsip_112.conf"].replace("no anonymous", "")
    assert "res_pjsip_endpoint_identifier_anonymous" not in files["modules.conf"]
    for name in INCLUDE_FILES:
        main = name.replace("_112", "")
        assert f"#include {name}" in files[main], main


def test_ami_user_is_loopback_only_without_system_or_command_rights(tmp_path: Path) -> None:
    manager = _render(tmp_path, "ami.secret=s3cret")["manager_112.conf"]
    assert "secret = s3cret" in manager
    assert "permit = 127.0.0.1/255.255.255.255" in manager
    write = re.search(r"^write = (.*)$", manager, re.M)
    assert write is not None
    assert not {"system", "command", "config", "all"} & set(write.group(1).split(","))


def test_generated_ami_secret_is_stable_per_runtime_dir(tmp_path: Path) -> None:
    first = _render(tmp_path)["manager_112.conf"]
    assert first == _render(tmp_path)["manager_112.conf"]
    assert (tmp_path / "ami.secret").stat().st_mode & 0o077 == 0


def test_deploy_render_writes_marked_includes_and_never_overwrites_foreign(
    tmp_path: Path,
) -> None:
    from telephony.pbx.deploy import DeployError, render
    from telephony.pbx.render import MARKER

    roster = production_roster(tmp_path / "roster")
    config = load(None, env={}, overrides=["ami.secret=prod-secret", f"operators.file={roster}"])
    first = render(config, tmp_path)
    assert {p.name for p in first.written} == set(INCLUDE_FILES)
    assert all(p.read_text().startswith(MARKER + "\n") for p in first.written)
    assert first.include_lines["extensions.conf"] == "#include extensions_112.conf"
    again = render(config, tmp_path)
    assert again.written == () and len(again.unchanged) == len(INCLUDE_FILES)
    theirs = tmp_path / "queues_112.conf"
    theirs.write_text("[their-queue]\n")
    with pytest.raises(DeployError, match="did not write"):
        render(config, tmp_path)
    assert theirs.read_text() == "[their-queue]\n"
    with pytest.raises(DeployError, match=r"ami\.secret"):
        render(load(None, env={}, overrides=[f"operators.file={roster}"]), tmp_path / "other")
