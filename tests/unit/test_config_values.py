"""Issue 12 (4): text that becomes Asterisk config is checked where it enters (CLI, TOML),
the renderer refuses unsafe text whatever its origin, deploy refuses the demo accounts, and
the files that hold secrets are created 0640."""

from __future__ import annotations

import dataclasses
import io
import os
import stat
from pathlib import Path

import pytest

from telephony import cli
from telephony.config import ConfigError, load
from telephony.location import RegionDataError, load_regions
from telephony.operators.roster import RosterError, load_roster
from telephony.pbx import deploy
from telephony.pbx.layout import Layout
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.render import RenderError, render_sandbox, write_sandbox
from telephony.pbx.trunks import TrunkError, load_trunks
from tests.harness.sandbox import production_roster

ROOT = Path(__file__).resolve().parents[2]
REGIONS = load_regions(ROOT / "config" / "regions.toml")
INSTALL = AsteriskInstall(("asterisk",), Path("/mods"), Path("/share"), "Asterisk 22.1", "t")
# The reproduction: a display name that opens an endpoint with no authentication.
EVIL = 'Budi"\n\n[evil]\ntype = endpoint\ncontext = from-operator-112\n'


def _sandbox(tmp_path: Path, *overrides: str) -> dict[str, str]:
    config = load(None, env={}, overrides=[f"asterisk.runtime_dir={tmp_path}", *overrides])
    return render_sandbox(config, INSTALL, Layout(tmp_path))


def test_operators_add_with_an_injected_name_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = production_roster(tmp_path)
    before = roster.read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    status = cli.main(["--set", f"operators.file={roster}", "--set",
                       f"asterisk.runtime_dir={tmp_path / 'asterisk'}", "operators", "add",
                       "x1", "--regency", "35.73", "--name", EVIL, "--password-stdin"])
    err = capsys.readouterr().err
    assert status != 0
    assert len(err.strip().splitlines()) == 1, err
    assert str(roster) in err and "name" in err and "line break" in err
    assert roster.read_text() == before
    pjsip = _sandbox(tmp_path / "render", f"operators.file={roster}")["pjsip_112.conf"]
    assert "[evil]" not in pjsip


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("name", EVIL, "line break"),
        ("name", "Budi <sip:evil@x>", "'<' or '>'"),
        ("name", "Budi; comment", "';'"),
        ("queues", "reg-3573\n[evil]", "queues"),
    ],
)
def test_roster_entries_are_checked_when_the_file_is_loaded(
    tmp_path: Path, field: str, value: str, says: str
) -> None:
    import tomlkit

    path = tmp_path / "operators.toml"
    entry = {"id": "op1", "regency": "35.73", "password": "demo-password",
             field: [value] if field == "queues" else value}
    path.write_text(tomlkit.dumps({"operator": [entry]}))
    with pytest.raises(RosterError) as err:
        load_roster(path, REGIONS)
    assert f"{path}: operator #1 (op1)" in str(err.value) and says in str(err.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("callbacks.centre_name", EVIL),
        ("callbacks.centre_name", "112 ${SHELL(id)}"),
        ("callbacks.centre_number", "112\n[evil]"),
        ("callbacks.trunk_contact", "sip:127.0.0.2\n[evil]"),
        ("callbacks.trunk_contact", "sip:127.0.0.2;transport=tcp"),
        ("recording.directory", "var/rec\n[evil]"),
        ("recording.directory", "var/rec,b"),
        ("ivr.default_queue", "prov-35)\n[evil]"),
        ("ivr.prompts_dir", "ivr prompts"),
        ("operators.handover_prefix", "*8\n[evil]"),
        ("ami.username", "telephony]\n[evil"),
        ("ami.secret", "s3cret\nread = all"),
        ("ami.secret", "s3cret;x"),
        ("asterisk.sip_bind", "127.0.0.1\n[evil]"),
        ("asterisk.ami_bind", "127.0.0.1 x"),
        ("asterisk.trunk_address", "127.0.0.2\nmatch = 0.0.0.0/0"),
        ("asterisk.runtime_dir", "var/ast\nastetcdir => /etc"),
        ("asterisk.tls_cert_file", "/k/c.pem\n[evil]"),
        ("agi.bind", "127.0.0.1/ivr,evil"),
    ],
)
def test_config_values_that_reach_asterisk_are_checked_where_they_enter(
    tmp_path: Path, key: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^command line --set: {key}: "):
        load(None, env={}, overrides=[f"{key}={value}"])
    section, name = key.split(".")
    with pytest.raises(ConfigError, match=rf"^environment TELEPHONY_{section.upper()}_"):
        load(None, env={f"TELEPHONY_{section.upper()}_{name.upper()}": value})
    toml = tmp_path / "telephony.toml"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    toml.write_text(f'[{section}]\n{name} = "{escaped}"\n')
    with pytest.raises(ConfigError) as err:
        load(toml, env={})
    assert str(err.value).startswith(f"{toml}: {key}: ")
    assert "\n" not in str(err.value)


def test_the_defaults_and_real_values_still_load() -> None:
    config = load(None, env={}, overrides=[
        "callbacks.centre_name=112 Kab. Malang (Jawa Timur), Sie. Darurat",
        "callbacks.trunk_contact=sip:[2001:db8::5]:5060", "asterisk.sip_bind=pbx.example",
        "asterisk.trunk_address=10.20.0.0/24", "recording.directory=/srv/112/rec-2026",
        "ami.secret=Xy_9-long.secret!", "operators.handover_prefix=#9",
    ])
    assert config.callbacks.trunk_contact == "sip:[2001:db8::5]:5060"


def test_a_trunk_outbound_with_a_line_break_is_refused_naming_file_and_trunk(
    tmp_path: Path,
) -> None:
    path = tmp_path / "trunks.toml"
    path.write_text('[[trunk]]\nname = "telco2"\nnetworks = ["203.0.113.16/29"]\n'
                    'outbound = "sip:203.0.113.17\\n\\n[evil]\\ntype = endpoint"\n')
    with pytest.raises(TrunkError, match=rf"^{path}: trunk #1 \(telco2\): outbound "):
        load_trunks(path, load(None, env={}))


def test_a_regency_name_with_a_line_break_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "config" / "regions.toml").read_text()
    path = tmp_path / "regions.toml"
    path.write_text(text.replace('name = "Kota Malang"', 'name = "Kota Malang\\n[evil]"', 1))
    assert path.read_text() != text
    with pytest.raises(RegionDataError, match="line break"):
        load_regions(path)


@pytest.mark.parametrize(
    ("section", "field", "value", "template"),
    [
        ("callbacks", "centre_name", "112\n\n[evil]\ntype = endpoint", "extensions_112.conf"),
        ("recording", "directory", "/var/rec;x", "extensions_112.conf"),
        ("ami", "username", "telephony]\n[evil", "manager_112.conf"),
        ("ivr", "default_queue", "q\n[evil]", "extensions_112.conf"),
    ],
)
def test_the_renderer_refuses_unsafe_text_whatever_its_origin(
    tmp_path: Path, section: str, field: str, value: str, template: str
) -> None:
    config = load(None, env={}, overrides=[f"asterisk.runtime_dir={tmp_path}"])
    part = dataclasses.replace(getattr(config, section), **{field: value})
    bad = dataclasses.replace(config, **{section: part})
    with pytest.raises(RenderError) as err:
        render_sandbox(bad, INSTALL, Layout(tmp_path))
    assert str(err.value).startswith(f"{template}: refusing to render ")


def test_the_renderer_still_renders_a_bracketed_ipv6_host(tmp_path: Path) -> None:
    files = _sandbox(tmp_path, "asterisk.ami_bind=::1", "asterisk.ami_tls_port=5039",
                     "asterisk.tls_cert_file=/k/c.pem", "asterisk.tls_key_file=/k/c.key")
    assert "tlsbindaddr = [::1]:5039" in files["manager.conf"]


def test_deploy_render_refuses_the_demo_accounts_and_the_sandbox_keeps_them(
    tmp_path: Path,
) -> None:
    demo = load(None, env={}, overrides=["ami.secret=prod-secret",
                                         f"asterisk.runtime_dir={tmp_path / 'sandbox'}"])
    with pytest.raises(deploy.DeployError, match=r"op3507, op3573, op3578 have a plain password"):
        deploy.render(demo, tmp_path / "etc")
    assert not (tmp_path / "etc").exists()
    assert "md5_cred" in _sandbox(tmp_path / "sandbox")["pjsip_112.conf"]


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


def test_files_with_secrets_are_created_0640_not_chmodded_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: dict[str, int] = {}
    real_open = os.open

    def recording_open(path: os.PathLike[str] | str, flags: int, mode: int = 0o777) -> int:
        created[Path(path).name] = mode
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", recording_open)
    roster = production_roster(tmp_path / "roster")
    config = load(None, env={}, overrides=["ami.secret=prod-secret", f"operators.file={roster}",
                                           f"asterisk.runtime_dir={tmp_path / 'sandbox'}"])
    etc = tmp_path / "etc"
    etc.mkdir()
    # An older render left a world-readable file: its replacement is not.
    (etc / "manager_112.conf").write_text(deploy.includes(config)["manager_112.conf"])
    (etc / "manager_112.conf").chmod(0o644)
    monkeypatch.setattr(os, "chmod", lambda *a, **k: pytest.fail("chmod after the fact"))
    deploy.render(config, etc)
    write_sandbox(config, INSTALL, Layout(tmp_path / "sandbox"))
    for directory in (etc, tmp_path / "sandbox" / "etc"):
        modes = _modes(directory)
        assert modes["manager_112.conf"] == 0o640 and modes["pjsip_112.conf"] == 0o640, modes
        assert modes["extensions_112.conf"] == 0o644
    for name in ("manager_112.conf", "pjsip_112.conf"):
        modes_at_creation = {m for n, m in created.items() if n.startswith(f".{name}.")}
        assert modes_at_creation == {0o640}, created
