"""`deploy render/apply` for the edge: its files in a production directory, marked as ours,
never over someone else's, and what apply does to an edge it cannot reach (no process)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from telephony.commands import deploy as commands
from telephony.config import Config, load
from telephony.edge import deploy, phones
from telephony.edge.render import MARKER, EdgeError, is_ours, layout_for, write, write_subscribers
from tests.harness.net import free_port
from tests.harness.sandbox import production_roster

DEBIAN_SAMPLE = "#!KAMAILIO\n#\n# Kamailio SIP Server v5.6 - default configuration script\n"


def _config(tmp_path: Path, *overrides: str) -> Config:
    roster = production_roster(tmp_path / "roster")
    return load(None, env={}, overrides=[
        f"operators.file={roster}", f"asterisk.runtime_dir={tmp_path / 'ast'}",
        f"edge.runtime_dir={tmp_path / 'run'}", f"edge.rpc_port={free_port()}",
        "ami.secret=unit-test-secret", *overrides,
    ])  # fmt: skip


def test_the_files_go_to_the_target_marked_and_the_credentials_not_world_readable(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    layout = layout_for(config, tmp_path / "etc-kamailio")
    installed = deploy.install(config, layout)
    assert set(installed.written) == {layout.cfg, layout.addresses, layout.subscribers}
    assert all(p.is_relative_to(tmp_path / "etc-kamailio") for p in installed.written)
    assert layout.cfg.read_text().splitlines()[:2] == ["#!KAMAILIO", MARKER]
    assert layout.addresses.read_text().startswith(MARKER + "\n")
    assert layout.subscribers.read_text().startswith(phones.COLUMNS + "\n")
    assert all(is_ours(p) for p in installed.written)
    assert layout.subscribers.stat().st_mode & 0o777 == 0o640
    assert layout.db.stat().st_mode & 0o777 == 0o750
    # The config names the installed files, not the runtime directory's.
    assert f'"{layout.addresses}"' in layout.cfg.read_text()
    assert f"text://{layout.db}" in layout.cfg.read_text()
    again = deploy.install(config, layout)
    assert again.written == () and set(again.unchanged) == set(installed.written)


def test_a_file_not_ours_is_never_overwritten(tmp_path: Path) -> None:
    config = _config(tmp_path)
    layout = layout_for(config, tmp_path / "etc-kamailio")
    layout.conf.mkdir()
    layout.cfg.write_text(DEBIAN_SAMPLE)
    with pytest.raises(EdgeError, match=r"did not write: .*kamailio\.cfg.*move it aside"):
        deploy.install(config, layout)
    assert layout.cfg.read_text() == DEBIAN_SAMPLE
    assert not layout.addresses.exists() and not layout.db.exists()
    # Ours is recognised by its marker, whatever else changed in it.
    layout.cfg.write_text(f"#!KAMAILIO\n{MARKER}\nedited by hand\n")
    assert deploy.install(config, layout).written


def test_config_dir_names_the_target_and_the_flag_wins(tmp_path: Path) -> None:
    config = _config(tmp_path, f"edge.config_dir={tmp_path / 'etc'}")
    assert layout_for(config).cfg == tmp_path / "etc" / "kamailio.cfg"
    assert layout_for(config).pidfile == tmp_path / "run" / "run" / "kamailio.pid"
    assert layout_for(config, tmp_path / "flag").cfg == tmp_path / "flag" / "kamailio.cfg"
    sandbox = layout_for(_config(tmp_path))
    assert sandbox.etc is None and sandbox.cfg == tmp_path / "run" / "kamailio.cfg"


def test_apply_without_a_running_edge_says_what_it_did_not_do(tmp_path: Path) -> None:
    config = _config(tmp_path)
    layout = layout_for(config, tmp_path / "etc-kamailio")
    installed = deploy.install(config, layout)
    effect = deploy.put_into_effect(config, layout, installed, restart=False)
    assert effect.problems == ()
    assert effect.done[0].startswith(f"not restarted: {layout.cfg} changed")
    assert f"not reloaded: {layout.addresses} (the edge is not running" in effect.done[1]
    assert "db_text" in effect.done[2]
    # Nothing changed: nothing to say.
    unchanged = deploy.install(config, layout)
    assert deploy.put_into_effect(config, layout, unchanged, restart=True) == deploy.Effect((), ())


def test_restart_without_systemd_is_a_problem_not_a_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy, "SYSTEMD", tmp_path / "no-systemd")
    config = _config(tmp_path)
    layout = layout_for(config, tmp_path / "etc-kamailio")
    effect = deploy.put_into_effect(config, layout, deploy.install(config, layout), restart=True)
    assert len(effect.problems) == 1 and "no systemd here" in effect.problems[0].message


def _deploy(config: Config, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers())
    args = parser.parse_args(["deploy", *argv])
    status: int = args.handler(config, args)
    return status


def test_direct_mode_renders_no_edge_file_and_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, "edge.enabled=false", "location.pidf_lo=false")
    edge = tmp_path / "etc-kamailio"
    assert _deploy(config, "render", "--target", str(tmp_path / "etc"),
                   "--edge-target", str(edge)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln for ln in lines if ln.startswith("edge:")] == [commands.DIRECT]
    assert not edge.exists()


def test_render_with_the_edge_writes_both_trees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    edge = tmp_path / "etc-kamailio"
    assert _deploy(config, "render", "--target", str(tmp_path / "etc"),
                   "--edge-target", str(edge)) == 0
    out = capsys.readouterr().out
    assert f"wrote     {edge / 'kamailio.cfg'}" in out
    assert f"wrote     {tmp_path / 'etc' / 'pjsip_112.conf'}" in out


def test_operators_add_keeps_the_installed_table_readable_by_kamailios_group_only(
    tmp_path: Path,
) -> None:
    installed = _config(tmp_path, f"edge.config_dir={tmp_path / 'etc'}")
    write_subscribers(installed, layout_for(installed))
    assert (tmp_path / "etc" / "db" / "subscriber").stat().st_mode & 0o777 == 0o640
    # The sandbox's Kamailio runs as whoever renders it: nobody else reads the digests.
    sandbox = _config(tmp_path / "sandbox")
    write(sandbox, layout_for(sandbox))
    assert layout_for(sandbox).subscribers.stat().st_mode & 0o777 == 0o600
