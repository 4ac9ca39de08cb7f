"""One error path: a broken configuration file is one line naming the file and the key, exit
status 2 (which systemd does not restart), and never a traceback."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from telephony import cli
from telephony.errors import ExitCode
from telephony.resources import shipped
from tests.harness.sandbox import production_roster

BROKEN = {
    # file (config key that names it): (broken text, what the line must name)
    "telephony.toml": ("[asterisk]\nsip_port = 'five'\n", "asterisk.sip_port"),
    "trunks.toml": (
        "[[trunk]]\nname = 'tsel'\nnetworks = ['10.0.0.0/8']\ndtmf_mode = 'loud'\n",
        "dtmf_mode",
    ),
    "regions.toml": (
        "[province]\ncode = '35'\n\n[[regency]]\ncode = '35.07'\nname = 'Kab. Malang'\n",
        "points",
    ),
    "operators.toml": (
        "[[operator]]\nid = 'op1'\nregency = '99.99'\npassword = 'p'\n",
        "regency",
    ),
}
KEYS = {
    "trunks.toml": "asterisk.trunks_file",
    "regions.toml": "location.regions_file",
    "operators.toml": "operators.file",
}


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


Telephony = Callable[..., Done]


@pytest.fixture
def telephony(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Telephony:
    """`telephony ARGS` in this process (a subprocess costs seconds of imports): an error
    that escaped cli.main would fail the test as a traceback would."""
    for name in [n for n in os.environ if n.startswith("TELEPHONY_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    # deploy render refuses the shipped demo accounts: a production roster, unless a test
    # gives its own (a later --set wins).
    flags = ["--set", "ami.secret=errors-test", "--set",
             f"asterisk.runtime_dir={tmp_path / 'asterisk'}",
             "--set", f"operators.file={production_roster(tmp_path / 'production')}"]  # fmt: skip

    def run(*args: str) -> Done:
        capsys.readouterr()
        code = cli.main([*flags, *args])
        out = capsys.readouterr()
        return Done(code, out.out, out.err)

    return run


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_config_file_is_one_line_naming_file_and_key_and_exits_2(
    telephony: Telephony, tmp_path: Path, name: str
) -> None:
    text, key = BROKEN[name]
    broken = tmp_path / name
    broken.write_text(text)
    where = ["--config", str(broken)] if name == "telephony.toml" else [
        "--set", f"{KEYS[name]}={broken}"
    ]  # fmt: skip
    target = tmp_path / "etc"
    target.mkdir()
    # deploy render reads every configuration file.
    done = telephony(*where, "deploy", "render", "--target", str(target))
    assert done.returncode == 2 and ExitCode(2) is ExitCode.CONFIG, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(broken) in lines[0] and key in lines[0], lines[0]
    assert not list(target.iterdir()), "nothing is written from a broken configuration"


def test_the_shipped_trunks_and_regions_render(telephony: Telephony, tmp_path: Path) -> None:
    target = tmp_path / "etc"
    target.mkdir()
    flags = [arg for name, key in KEYS.items() if name != "operators.toml"
             for arg in ("--set", f"{key}={shipped('config/' + name)}")]  # fmt: skip
    done = telephony(*flags, "deploy", "render", "--target", str(target))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_missing_roster_entry_and_a_stopped_sandbox_have_their_own_codes(
    telephony: Telephony, tmp_path: Path
) -> None:
    roster = tmp_path / "operators.toml"
    roster.write_text("")
    removed = telephony("--set", f"operators.file={roster}",
                        "--set", f"audit.database_url=sqlite:///{tmp_path / 'db'}",
                        "operators", "remove", "nobody")  # fmt: skip
    assert "Traceback" not in removed.stderr, removed.stderr
    assert removed.stderr.strip().splitlines()[-1] == (
        f"telephony: {roster}: no operator 'nobody'"
    ), removed.stderr
    assert removed.returncode == ExitCode.CONFIG
    status = telephony("asterisk", "status")
    assert status.returncode == ExitCode.NOT_RUNNING, status.stdout + status.stderr
