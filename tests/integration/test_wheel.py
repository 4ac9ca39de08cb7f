"""The wheel is the product: built with `pip wheel .`, installed into a fresh virtualenv and
run from a directory that is not the checkout, it renders, checks and runs Asterisk.

The fresh virtualenv takes the dependencies from the suite's own (a .pth file), so the test
needs no network and costs seconds; our package comes only from the wheel.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from telephony.operators.roster import ha1
from telephony.pbx.render import INCLUDE_FILES
from tests.harness import CHECKOUT
from tests.harness.net import free_port

pytestmark = pytest.mark.asterisk


def run(*argv: str | Path, cwd: Path, status: int = 0) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == status, (
        f"{argv} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only the wheel of this checkout installed in it."""
    root = tmp_path_factory.mktemp("wheel")
    # No build isolation: setuptools comes from the dev extra, so the build is offline.
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", root / "dist", CHECKOUT, cwd=root)  # fmt: skip
    (wheel,) = (root / "dist").glob("telephony-*.whl")
    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel,
        cwd=root)  # fmt: skip
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                    cwd=root).strip())  # fmt: skip
    (site / "suite-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    where = run(python, "-c", "import telephony; print(telephony.__file__)", cwd=root)
    assert Path(where.strip()).is_relative_to(site), where
    return venv


def test_the_installed_wheel_renders_checks_and_runs_asterisk(
    installed: Path, tmp_path: Path
) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    telephony = installed / "bin" / "telephony"
    # deploy render refuses the shipped demo accounts: a roster as production has it.
    roster = tmp_path / "operators.toml"
    roster.write_text('[[operator]]\nid = "op1"\nregency = "35.73"\n'
                      f'ha1 = "{ha1("op1", "a-long-secret")}"\n')
    flags = [
        "--set", f"operators.file={roster}",
        "--set", f"asterisk.sip_port={free_port(socket.SOCK_DGRAM)}",
        "--set", f"asterisk.ami_port={free_port()}",
        "--set", f"agi.port={free_port()}",
        "--set", f"health.port={free_port()}",
        "--set", "ami.secret=wheel-test-secret",
        "--set", f"edge.port={free_port(socket.SOCK_DGRAM)}",
        "--set", f"edge.inside_port={free_port(socket.SOCK_DGRAM, '127.0.0.10')}",
        "--set", f"edge.phone_port={free_port(socket.SOCK_DGRAM)}",
        "--set", f"edge.phone_tls_port={free_port()}",
        "--set", f"edge.rpc_port={free_port()}",
        "--set", f"edge.validator_port={free_port()}",
        "--log-format", "console",
    ]  # fmt: skip
    target = tmp_path / "etc-asterisk"
    target.mkdir()
    rendered = run(telephony, *flags, "deploy", "render", "--target", target, cwd=cwd)
    assert sorted(p.name for p in target.iterdir()) == sorted(INCLUDE_FILES), rendered
    assert "[emergency-112]" in (target / "extensions_112.conf").read_text()
    # The edge's files too, from the wheel's kamailio/ templates.
    assert (cwd / "var" / "kamailio" / "kamailio.cfg").read_text().startswith("#!KAMAILIO\n")
    run(telephony, *flags, "asterisk", "provision", cwd=cwd)
    run(telephony, *flags, "asterisk", "up", cwd=cwd)
    run(telephony, *flags, "edge", "up", cwd=cwd)
    try:
        checked = run(telephony, *flags, "deploy", "check", cwd=cwd)
        assert checked.strip().endswith("deploy check: ok"), checked
        # The prompts Asterisk plays are the wheel's, not the checkout's.
        playlist = (cwd / "var" / "asterisk" / "etc" / "musiconhold_112.conf").read_text()
        assert str(installed) in playlist and str(CHECKOUT) not in playlist, playlist
    finally:
        run(telephony, *flags, "edge", "down", cwd=cwd)
        run(telephony, *flags, "asterisk", "down", cwd=cwd)
    stopped = run(telephony, *flags, "asterisk", "status", cwd=cwd, status=3)
    assert stopped.startswith("stopped"), stopped


def _files(root: Path) -> set[str]:
    found = set()
    for folder, dirs, names in os.walk(root, followlinks=True):  # data/ holds links
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found |= {str(Path(folder, n).relative_to(root)) for n in names
                  if not n.endswith(".pyc")}
    return found


def test_the_wheel_ships_every_file_of_the_package(installed: Path, tmp_path: Path) -> None:
    """Templates, ES modules, stylesheets, migrations and every shipped config (agencies.toml,
    aml.toml): what the checkout has under telephony/ (data/ links followed), the wheel has."""
    site = Path(run(installed / "bin" / "python", "-c",
                    "import sysconfig; print(sysconfig.get_path('purelib'))",
                    cwd=tmp_path).strip()) / "telephony"  # fmt: skip
    shipped = _files(site)
    assert _files(CHECKOUT / "telephony") - shipped == set()
    for name in ("console/static/wallboard.js", "console/static/incidents.js",
                 "console/static/handset.js", "console/templates/wallboard.html",
                 "data/config/agencies.toml", "data/config/aml.toml"):
        assert name in shipped, name
