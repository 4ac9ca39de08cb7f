from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from telephony.pbx import deploy
from telephony.pbx.check import Problem
from telephony.pbx.process import AsteriskError

BANNER = "[2026-11-28 21:32:35.553] Asterisk 22.10.1 built by nobody\n"


class FakeLogger:
    """An Asterisk that logs like 22.x: each `-rx` connection logs a verbose line first, and
    a reload logs what `messages` holds for it."""

    def __init__(self, log_dir: Path, messages: dict[str, str], *, readable: bool = True) -> None:
        self.log_dir = log_dir
        self.messages = messages
        self.readable = readable
        self.asked: list[str] = []
        self.channel: Path | None = None

    def cli(self, command: str) -> str:
        self.asked.append(command)
        if self.channel is not None:
            self._log("VERBOSE[100] asterisk.c: Remote UNIX connection")
        if command == "core show settings":
            return f"  Log directory:               {self.log_dir}\n"
        if command.startswith("logger add channel "):
            name = command.split()[3]
            if self.readable:
                self.channel = self.log_dir / name
                self.channel.write_text(BANNER)
            return ""
        if command.startswith("logger remove channel "):
            self.channel = None
            return f"Removed dynamic logger channel '{command.split()[3]}'\n"
        if command in self.messages:
            self._log(self.messages[command])
        if command.startswith("module reload "):
            return f"Module '{command.split()[2]}' reloaded successfully.\n"
        return ""

    def _log(self, line: str) -> None:
        if self.channel is not None:
            with self.channel.open("a") as fh:
                fh.write(f"[2026-11-28 21:32:35.569] {line}\n")


def test_reload_reports_what_asterisk_logged_with_file_and_line(tmp_path: Path) -> None:
    broken = "/etc/asterisk/their.conf"
    fake = FakeLogger(tmp_path, {
        "dialplan reload": f"WARNING[8118] config.c: No '=' (equal sign) in line 3 of {broken}",
        "module reload res_pjsip.so": "NOTICE[4291] sorcery.c: Type 'system' is not reloadable",
        "manager reload": "ERROR[4403][C-00000001] config.c: The file 'x.conf' was listed as "
                          "a #include but it does not exist.",
    })
    reloaded = deploy.reload(fake)
    assert reloaded.captured
    assert reloaded.problems == (
        Problem("Asterisk: No '=' (equal sign)", Path(broken), 3),
        Problem("Asterisk: The file 'x.conf' was listed as a #include but it does not exist."),
    )
    reloads = [c for c in fake.asked if c in deploy.RELOADS]
    assert reloads == list(deploy.RELOADS)
    assert fake.asked[-1].startswith("logger remove channel ")
    assert list(tmp_path.iterdir()) == []


def test_reload_goes_on_when_the_log_is_not_readable_here(tmp_path: Path) -> None:
    fake = FakeLogger(tmp_path, {}, readable=False)
    reloaded = deploy.reload(fake)
    assert reloaded == deploy.Reloaded((), captured=False)
    assert [c for c in fake.asked if c in deploy.RELOADS] == list(deploy.RELOADS)


def test_a_module_that_does_not_reload_is_a_problem(tmp_path: Path) -> None:
    class Unloaded(FakeLogger):
        def cli(self, command: str) -> str:
            answer = super().cli(command)
            if command == "module reload res_geolocation.so":
                return "The module 'res_geolocation.so' was not properly initialized.\n"
            return answer

    problems = deploy.reload(Unloaded(tmp_path, {})).problems
    assert problems == (Problem(
        "module reload res_geolocation.so: "
        "The module 'res_geolocation.so' was not properly initialized."
    ),)


def shell(script: str) -> deploy.CommandCLI:
    return deploy.CommandCLI([sys.executable, "-c", script])


def test_command_cli_passes_the_command_as_one_last_argument() -> None:
    echo = shell("import sys; print(repr(sys.argv[1:]))")
    assert echo.cli("queue show prov-35") == "['queue show prov-35']\n"


@pytest.mark.parametrize(
    "script",
    [
        "raise SystemExit(1)",
        "print('Unable to connect to remote asterisk (does /var/run/asterisk.ctl exist?)')",
    ],
)
def test_command_cli_failures_raise(script: str) -> None:
    with pytest.raises(AsteriskError):
        shell(script).cli("core show version")


def test_command_cli_needs_a_command() -> None:
    with pytest.raises(deploy.DeployError):
        deploy.CommandCLI(shlex.split(""))


def test_setting_reads_core_show_settings() -> None:
    settings = shell(
        "print('* Directories\\n  -------------\\n'"
        "'  Configuration file:          /etc/asterisk/asterisk.conf\\n'"
        "'  Configuration directory:     /etc/asterisk\\n')"
    )
    assert deploy.setting(settings, "Configuration directory") == Path("/etc/asterisk")
    with pytest.raises(deploy.DeployError):
        deploy.setting(settings, "Log directory")
