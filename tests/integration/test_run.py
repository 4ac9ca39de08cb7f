"""Issue 12 (7): the quick start fails open too. The real `scripts/run`, on free ports:
kill -9 its `telephony serve` and a 112 call placed at once (through the SIP edge it
supervises, issue 15) still rings an operator, serve is back (/healthz 200) within 10 s,
and Ctrl-C (SIGINT) stops everything, Kamailio included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from telephony.config import Config, as_set_flags
from telephony.edge.process import Kamailio
from telephony.pbx.layout import Layout
from telephony.pbx.process import Asterisk
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.sandbox import install_for
from telephony.phone import Phone
from tests.harness.sandbox import phone_target, sandbox_config
from tests.harness.service import run_cli
from tests.harness.sipp import SippResult, run_scenario

pytestmark = pytest.mark.asterisk

ROOT = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT_S = 120.0
BACK_WITHIN_S = 10.0


def healthz(config: Config) -> int | None:
    url = f"http://{config.health.bind}:{config.health.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_healthy(config: Config, timeout: float, script: subprocess.Popen[str]) -> float:
    """Seconds until /healthz answers 200."""
    started = time.monotonic()
    while healthz(config) != 200:
        assert script.poll() is None, f"scripts/run exited with {script.returncode}"
        assert time.monotonic() - started < timeout, f"/healthz not 200 after {timeout}s"
        time.sleep(0.1)  # /healthz has no push signal: poll it
    return time.monotonic() - started


def wait_edge(edge: Kamailio, timeout: float, script: subprocess.Popen[str]) -> None:
    """Until the supervised Kamailio answers JSON-RPC (it boots beside serve, not before)."""
    deadline = time.monotonic() + timeout
    while not edge.rpc.answers():
        assert script.poll() is None, f"scripts/run exited with {script.returncode}"
        assert time.monotonic() < deadline, f"the edge did not answer in {timeout}s"
        time.sleep(0.1)  # Kamailio pushes no readiness signal: poll its JSON-RPC


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces; the parent pid follows its ")".
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def serve_pid(script: int) -> int | None:
    """The `telephony ... serve` process under scripts/run (under its supervisor)."""
    todo = children(script)
    while todo:
        pid = todo.pop()
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and any(a.endswith(b"telephony") for a in argv):
            return pid
        todo += children(pid)
    return None


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _as_from_a_terminal() -> None:
    # A shell ignores SIGINT in what it starts in the background, and the ignoring is
    # inherited (CI may start the suite so): scripts/run gets SIGINT as from a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def quick_start(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Config, Path]]:
    roster = tmp_path / "operators.toml"
    roster.write_text('[[operator]]\nid = "r1"\nregency = "35.73"\npassword = "secret-r1"\n')
    config = sandbox_config(tmp_path, f"operators.file={roster}", "operators.wrapup_s=1")
    output = tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    env["TELEPHONY_VENV"] = sys.prefix
    with output.open("w") as sink:
        script = subprocess.Popen(
            [str(ROOT / "scripts" / "run"), "--log-format", "json", *as_set_flags(config)],
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            env=env, start_new_session=True, preexec_fn=_as_from_a_terminal,
        )
    try:
        yield script, config, output
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait(10)
        Asterisk(_install(config), Layout(Path(config.asterisk.runtime_dir))).stop()
        Kamailio(config).stop()


def _install(config: Config) -> AsteriskInstall:
    return install_for(config)


def test_serve_killed_under_scripts_run_is_restarted_and_calls_still_reach_an_operator(
    quick_start: tuple[subprocess.Popen[str], Config, Path],
) -> None:
    script, config, output = quick_start
    wait_healthy(config, BOOT_TIMEOUT_S, script)
    edge = Kamailio(config)
    wait_edge(edge, BOOT_TIMEOUT_S, script)
    edge_pid = edge.pid()
    target = f"{config.edge.bind}:{config.edge.port}"
    # The phones register at the edge's phone port, and scripts/run says so.
    phones_at = phone_target(config, edge_running=True)
    assert f"Operators' softphones: register to sip:{phones_at} " in output.read_text()
    with Phone("127.0.0.1", user="r1") as phone:
        phone.register(f"sip:{phones_at}", "r1", "secret-r1", timeout=5)
        done = run_cli(config, "operators", "login", "r1")
        assert done.returncode == 0, done.stdout + done.stderr
        first = serve_pid(script.pid)
        assert first is not None, output.read_text()

        os.kill(first, signal.SIGKILL)
        killed = time.monotonic()
        results: list[SippResult] = []
        caller = threading.Thread(target=lambda: results.append(run_scenario(
            "uac_112.xml", target, workdir=output.parent, extra=("-d", "6000"))))
        caller.start()
        try:
            # Nobody answers the FastAGI port now: the dialplan fails open into a queue.
            ringing = phone.wait_incoming(15)
            rang_after = time.monotonic() - killed
            assert ringing.header("From") is not None
            wait_healthy(config, BACK_WITHIN_S - (time.monotonic() - killed), script)
            back_after = time.monotonic() - killed
        finally:
            caller.join(30)
        assert results and results[0].ok, results[0].output + results[0].errors
        second = serve_pid(script.pid)
        assert second is not None and second != first
        lines = [ln for ln in output.read_text().splitlines() if "serve exited" in ln]
        assert len(lines) == 1 and "killed by SIGKILL" in lines[0], lines
        print(f"operator rang {rang_after:.1f}s, /healthz 200 {back_after:.1f}s after kill -9")

    asterisk = Asterisk(_install(config), Layout(Path(config.asterisk.runtime_dir)))
    assert asterisk.pid() is not None, "Asterisk must stay up while serve restarts"
    script.send_signal(signal.SIGINT)
    assert script.wait(60) == 130
    assert not alive(second), "serve outlived scripts/run"
    assert asterisk.pid() is None, "Asterisk outlived scripts/run"
    assert edge_pid is not None and not alive(edge_pid), "Kamailio outlived scripts/run"
    assert [ln for ln in output.read_text().splitlines() if "serve exited" in ln] == lines
