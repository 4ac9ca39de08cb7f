"""`telephony deploy check / apply` against an Asterisk that also serves contexts not ours."""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from telephony.commands import deploy as commands
from telephony.config import Config
from telephony.control import watching
from telephony.edge.process import Kamailio
from telephony.edge.render import EdgeError
from telephony.pbx import deploy
from telephony.pbx.check import MAIN_FILES, Problem
from telephony.pbx.layout import Layout
from telephony.pbx.process import Asterisk
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.render import INCLUDE_FILES, write_sandbox
from tests.harness.sandbox import DIRECT, Sandbox, production_roster, sandbox_config
from tests.harness.sipp import SippResult, run_scenario

pytestmark = pytest.mark.asterisk

PROMPTS = Path(__file__).resolve().parents[2] / "ivr_prompts"
THEIR_EXTENSIONS = """\
; Not ours: the centre's internal extensions.
[their-context]
exten => 100,1,Answer()
 same => n,Hangup()
"""
THEIR_PJSIP = """\
[their-endpoint]
type = endpoint
context = their-context
disallow = all
allow = ulaw
aors = their-endpoint

[their-endpoint]
type = aor
max_contacts = 1
"""


def with_theirs(
    install: AsteriskInstall, root: Path, *overrides: str, deployed: bool = True
) -> Sandbox:
    """An Asterisk with contexts and endpoints of its own; `deployed=False` is how it looks
    before our first deploy: none of our files and no #include lines for them."""
    # Production rosters hold HA1 digests only: deploy refuses the demo accounts.
    roster = production_roster(root)
    # Direct mode: what deploy renders is Asterisk's side, and the trunk calls it directly.
    config = sandbox_config(root, "ami.secret=deploy-test-secret", f"operators.file={roster}",
                            *DIRECT, *overrides)
    layout = Layout(Path(config.asterisk.runtime_dir))
    write_sandbox(config, install, layout)
    for main, ours in MAIN_FILES.items():
        path = layout.etc / main
        if not deployed:
            (layout.etc / ours).unlink()
            kept = [ln for ln in path.read_text().splitlines() if ln != f"#include {ours}"]
            path.write_text("\n".join(kept) + "\n")
    (layout.etc / "their_extensions.conf").write_text(THEIR_EXTENSIONS)
    (layout.etc / "their_pjsip.conf").write_text(THEIR_PJSIP)
    for main, theirs in (("extensions.conf", "their_extensions"), ("pjsip.conf", "their_pjsip")):
        with (layout.etc / main).open("a") as fh:
            fh.write(f"#include {theirs}.conf\n")
    asterisk = Asterisk(install, layout)
    asterisk.start(config.asterisk.boot_timeout_s)
    return Sandbox(config, asterisk, root)


@pytest.fixture
def box(asterisk_install: AsteriskInstall, tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = with_theirs(asterisk_install, tmp_path)
    try:
        yield sandbox
    finally:
        sandbox.asterisk.stop()


def prefix(box: Sandbox) -> str:
    """This Asterisk's `asterisk -rx`, as an admin would pass it to --asterisk-cli."""
    argv = [*box.asterisk.install.command, "-C", str(box.layout.asterisk_conf), "-rx"]
    return shlex.join(argv)


def telephony_deploy(config: Config, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers())
    args = parser.parse_args(["deploy", *argv])
    status: int = args.handler(config, args)
    return status


def theirs(etc: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(etc.iterdir())
        if p.is_file() and p.name not in INCLUDE_FILES
    }


def test_first_deploy_puts_ours_next_to_theirs_and_leaves_theirs_byte_for_byte(
    asterisk_install: AsteriskInstall, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = with_theirs(asterisk_install, tmp_path, deployed=False)
    try:
        etc = box.layout.etc
        before = theirs(etc)
        # Our files go in, but Asterisk cannot load them until the main files include them.
        assert telephony_deploy(box.config, "apply", "--asterisk-cli", prefix(box)) == 1
        out = capsys.readouterr().out
        assert f"{etc / 'extensions.conf'}: does not include ours; add the line: " \
            "#include extensions_112.conf" in out
        assert "[emergency-112] is not loaded in Asterisk" in out
        assert theirs(etc) == before
        # The admin adds the lines once, as render and check ask.
        for main, ours in MAIN_FILES.items():
            with (etc / main).open("a") as fh:
                fh.write(f"#include {ours}\n")
        before = theirs(etc)
        assert telephony_deploy(box.config, "apply", "--asterisk-cli", prefix(box)) == 0
        out = capsys.readouterr().out
        assert out.rstrip().endswith("deploy apply: ok"), out
        assert "not readable here" not in out
        assert theirs(etc) == before
        cli = box.asterisk.cli
        assert "Context 'their-context'" in cli("dialplan show their-context")
        assert "Endpoint:  their-endpoint" in cli("pjsip show endpoint their-endpoint")
        assert "Context 'emergency-112'" in cli("dialplan show emergency-112")
        result = run_scenario(
            "uac_112.xml", box.sip_target, workdir=box.workdir, extra=("-d", "2000")
        )
        assert result.ok, result.output + result.errors
        assert box.wait_no_channels() == 0
    finally:
        box.asterisk.stop()


def test_check_names_the_file_and_line_of_a_broken_include(box: Sandbox) -> None:
    assert deploy.apply(box.asterisk, box.config, box.layout.etc).ok
    main = box.layout.etc / "extensions.conf"
    lines = main.read_text().splitlines()
    main.write_text("\n".join([*lines, "#include their_missing.conf"]) + "\n")
    problems = deploy.verify(box.asterisk, box.config, box.layout.etc)
    assert problems == [
        Problem(
            "#include their_missing.conf: no such file; Asterisk rejects the whole file",
            main,
            len(lines) + 1,
        )
    ]


def test_a_broken_line_is_reported_by_asterisk_and_by_check_with_file_and_line(
    box: Sandbox,
) -> None:
    their = box.layout.etc / "their_extensions.conf"
    their.write_text(THEIR_EXTENSIONS + "[their-broken\nexten => 200,1,Hangup()\n")
    broken_line = THEIR_EXTENSIONS.count("\n") + 1
    applied = deploy.apply(box.asterisk, box.config, box.layout.etc)
    assert applied.reloaded.captured
    assert Problem("Asterisk: parse error: no closing ']'", their, broken_line) in (
        applied.reloaded.problems
    ), applied.reloaded.problems
    assert applied.problems == (Problem("parse error: no closing ']'", their, broken_line),)
    assert not applied.ok


def test_check_fails_on_a_missing_prompt(
    asterisk_install: AsteriskInstall, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(PROMPTS, prompts)
    (prompts / "en" / "menu.wav").unlink()
    box = with_theirs(asterisk_install, tmp_path, f"ivr.prompts_dir={prompts}")
    try:
        applied = deploy.apply(box.asterisk, box.config, box.layout.etc)
    finally:
        box.asterisk.stop()
    assert applied.reloaded.problems == ()
    assert len(applied.problems) == 1, applied.problems
    assert str(prompts / "en" / "menu.wav") in applied.problems[0].message


def test_apply_during_a_call_does_not_drop_it(box: Sandbox) -> None:
    assert deploy.apply(box.asterisk, box.config, box.layout.etc).ok
    results: list[SippResult] = []
    with watching(box.config) as ami:
        caller = threading.Thread(
            target=lambda: results.append(
                run_scenario(
                    "uac_112.xml", box.sip_target, workdir=box.workdir, extra=("-d", "8000")
                )
            )
        )
        caller.start()
        try:
            joined = ami.wait_for("QueueCallerJoin")
            applied = deploy.apply(box.asterisk, box.config, box.layout.etc)
            assert applied.ok, applied
            assert box.asterisk.channel_count() == 1
        finally:
            caller.join(30)
        uniqueid = joined.frame.get("Uniqueid")
        hangup = ami.wait_for("Hangup", lambda f: f.get("Uniqueid") == uniqueid)
    # SIPp fails on a BYE it did not send; the call also lasted its full 8 s.
    assert results and results[0].ok, results[0].output + results[0].errors
    assert hangup.at - joined.at > 7.0
    assert box.wait_no_channels() == 0


DEBIAN_SAMPLE = "#!KAMAILIO\n# Kamailio SIP Server v5.6 - default configuration script\n"


def test_the_edge_is_deployed_checked_by_kamailio_and_reloaded_live(
    asterisk_install: AsteriskInstall, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etc = tmp_path / "etc-kamailio"
    etc.mkdir()
    (etc / "kamailio.cfg").write_text(DEBIAN_SAMPLE)
    trunks = tmp_path / "trunks.toml"
    trunks.write_text("")
    box = with_theirs(asterisk_install, tmp_path, "edge.enabled=true", "location.pidf_lo=true",
                      f"edge.config_dir={etc}", f"asterisk.trunks_file={trunks}")
    edge: Kamailio | None = None
    try:
        before = {p.name: p.read_bytes() for p in box.layout.etc.iterdir() if p.is_file()}
        # Debian's sample is not ours: nothing is written, Asterisk's files neither.
        with pytest.raises(EdgeError, match="did not write"):
            telephony_deploy(box.config, "apply", "--asterisk-cli", prefix(box))
        assert (etc / "kamailio.cfg").read_text() == DEBIAN_SAMPLE
        assert {p.name: p.read_bytes() for p in box.layout.etc.iterdir() if p.is_file()} == before
        (etc / "kamailio.cfg").rename(etc / "kamailio.cfg.debian")
        # Installed and `kamailio -c` clean, but nothing runs it yet.
        assert telephony_deploy(box.config, "apply", "--asterisk-cli", prefix(box)) == 1
        out = capsys.readouterr().out
        assert "the edge does not answer JSON-RPC" in out and "kamailio -c" not in out, out
        # `telephony edge run` (the unit) runs the installed files as they are.
        edge = Kamailio(box.config)
        assert edge.layout.cfg == etc / "kamailio.cfg"
        edge.start()
        assert telephony_deploy(box.config, "check", "--asterisk-cli", prefix(box)) == 0
        assert capsys.readouterr().out.rstrip().endswith("deploy check: ok")
        # A new trunk network reaches the running edge without a restart.
        trunks.write_text('[[trunk]]\nname = "telco2"\nnetworks = ["203.0.113.16/29"]\n')
        assert telephony_deploy(box.config, "apply", "--asterisk-cli", prefix(box)) == 0
        out = capsys.readouterr().out
        assert f"reloaded  {etc / 'trunks.address'} (permissions.addressReload)" in out, out
        assert "203.0.113.16" in json.dumps(edge.rpc.call("permissions.subnetDump"))
        # A trunk call through the deployed edge reaches the dialplan.
        behind = Sandbox(box.config, box.asterisk, box.workdir, edge)
        result = run_scenario("uac_112.xml", behind.sip_target, workdir=box.workdir,
                              extra=("-d", "1000"))
        assert result.ok, result.output + result.errors
        # Real Kamailio's `-c` finds what is broken in an installed file.
        cfg = etc / "kamailio.cfg"
        cfg.write_text(cfg.read_text() + 'loadmodule "no_such_module.so"\n')
        assert telephony_deploy(box.config, "check", "--asterisk-cli", prefix(box)) == 1
        out = capsys.readouterr().out
        assert f"{cfg}: kamailio -c {cfg} failed" in out, out
        assert f"{cfg}: not what the configuration renders now" in out
        # Apply repairs it, but a running Kamailio never reads its cfg again: check says so
        # until the edge is restarted, which apply does only when asked, through systemd.
        assert telephony_deploy(box.config, "apply", "--asterisk-cli", prefix(box)) == 1
        out = capsys.readouterr().out
        assert f"not restarted: {cfg} changed" in out
        assert f"{cfg}: changed after the running edge started" in out
        assert "kamailio -c" not in out
        assert behind.wait_no_channels() == 0
    finally:
        box.asterisk.stop()
        if edge is not None:
            edge.stop()
