"""Put our include files onto a production Asterisk that also serves contexts not ours.

The sandbox renders through the same `render_includes`, so what the tests exercise is what
production gets. `apply` writes them and reloads only the modules that read them; none of
those reloads hangs up a call in progress.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from telephony.agi.ivr import LANGUAGES
from telephony.config import Config, resolve_path
from telephony.errors import TelephonyError
from telephony.location import load_regions
from telephony.operators.roster import load_roster
from telephony.pbx.check import CLI, Problem, check
from telephony.pbx.process import AsteriskError
from telephony.pbx.render import (
    INCLUDE_FILES,
    is_ours,
    render_includes,
    up_to_date,
    write_config,
)

log = structlog.get_logger(__name__)

# One per include file we write, what is referred to before what refers to it: the trunk
# endpoint names a geolocation profile (pjsip drops an endpoint whose profile is unknown),
# queues name a music class.
RELOADS = (
    "module reload res_geolocation.so",
    "moh reload",
    "module reload res_pjsip.so",
    "dialplan reload",
    "module reload app_queue.so",
    "manager reload",
)
# A temporary logger channel catches what the reloads log. Its verbose(3) level adds the
# "Remote UNIX connection" line each `asterisk -rx` logs before running its command: Asterisk
# logs in order, so the line of a command run after the reloads means all of theirs are in.
# Someone else's `asterisk -rx` meanwhile can only end the wait early; check runs anyway.
_CAPTURE_LEVELS = "notice,warning,error,verbose(3)"
_CONNECTED = re.compile(r"Remote UNIX connection$", re.M)
_LOGGED = re.compile(
    r"^\[[^\]]*\]\s+(?:WARNING|ERROR)\[\d+\](?:\[[^\]]*\])?\s+\S+:\s+(?P<message>.*)$", re.M
)
_AT_LINE = re.compile(r",?\s*(?:in )?line (?P<line>\d+) of (?P<file>\S+)")
CAPTURE_WAIT_S = 10.0


class DeployError(TelephonyError):
    """Rendering would overwrite someone else's file, or the config is not fit for production."""


@dataclass(frozen=True)
class Rendered:
    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]
    include_lines: dict[str, str]


@dataclass(frozen=True)
class Reloaded:
    problems: tuple[Problem, ...]
    # False when Asterisk's log of the reloads could not be read here (another host, rights).
    captured: bool


@dataclass(frozen=True)
class Applied:
    rendered: Rendered
    reloaded: Reloaded
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not (self.reloaded.problems or self.problems)


class CommandCLI:
    """Any command prefix that runs one Asterisk CLI command given as its last argument,
    e.g. ``asterisk -rx`` or ``ssh pbx sudo asterisk -rx``."""

    def __init__(self, prefix: Sequence[str], timeout: float = 30.0) -> None:
        if not prefix:
            raise DeployError("--asterisk-cli needs a command, e.g. 'asterisk -rx'")
        self._prefix = list(prefix)
        self._timeout = timeout

    def cli(self, command: str) -> str:
        argv = [*self._prefix, command]
        try:
            out = subprocess.run(
                argv, capture_output=True, text=True, timeout=self._timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AsteriskError(f"{' '.join(argv)!r} failed: {exc}") from exc
        if out.returncode != 0 or "Unable to connect to remote asterisk" in out.stdout:
            raise AsteriskError(f"{' '.join(argv)!r} failed: {(out.stdout + out.stderr).strip()}")
        return out.stdout


def include_lines() -> dict[str, str]:
    """The `#include` line each main file needs, keyed by main file name."""
    return {name.replace("_112", ""): f"#include {name}" for name in INCLUDE_FILES}


def includes(config: Config) -> dict[str, str]:
    """Our include files as this configuration renders them, for a production Asterisk."""
    if not config.ami.secret:
        raise DeployError(
            "ami.secret is empty: set it (for example TELEPHONY_AMI_SECRET) for a production "
            "Asterisk, and give the service the same value"
        )
    return render_includes(config, config.ami.secret)


def refuse_demo_accounts(config: Config) -> None:
    """A plain `password` in the roster is for the sandbox's demo operators only: it is
    printed by scripts/run and sits in a file many can read. Production needs ha1."""
    roster = resolve_path(config.operators.file)
    regions = load_regions(resolve_path(config.location.regions_file))
    demo = [op.id for op in load_roster(roster, regions) if op.demo_password is not None]
    if demo:
        raise DeployError(
            f"{roster}: operator(s) {', '.join(demo)} have a plain password (demo accounts): "
            "remove them, and add real operators with `telephony operators add`, which "
            "stores only ha1"
        )


def render(config: Config, target: Path) -> Rendered:
    """Write our include files into `target`; refuse to replace a file we did not write,
    and refuse the demo accounts."""
    refuse_demo_accounts(config)
    files = includes(config)
    foreign = [target / n for n in files if (target / n).exists() and not is_ours(target / n)]
    if foreign:
        names = ", ".join(str(p) for p in foreign)
        raise DeployError(f"refusing to overwrite files telephony did not write: {names}")
    target.mkdir(parents=True, exist_ok=True)
    written, unchanged = [], []
    for name, text in files.items():
        path = target / name
        if up_to_date(path, text):
            unchanged.append(path)
            continue
        write_config(path, text)
        written.append(path)
    return Rendered(tuple(written), tuple(unchanged), include_lines())


def setting(cli: CLI, label: str) -> Path:
    """A directory Asterisk reports in `core show settings`, e.g. "Configuration directory"."""
    found = re.search(rf"^\s*{re.escape(label)}:\s+(\S.*?)\s*$", cli.cli("core show settings"),
                      re.M)
    if found is None:
        raise DeployError(f"Asterisk's core show settings has no {label!r}")
    return Path(found.group(1))


def verify(cli: CLI, config: Config, confdir: Path) -> list[Problem]:
    """`telephony deploy check`: what `telephony.pbx.check` finds, for this configuration."""
    prompts_dir = resolve_path(config.ivr.prompts_dir)
    return check(cli, confdir, includes(config), prompts_dir, LANGUAGES)


def reload(cli: CLI) -> Reloaded:
    """Reload the modules that read our files, reporting what Asterisk logs meanwhile."""
    name = f"telephony-apply-{os.getpid()}-{secrets.token_hex(4)}.log"
    capture = setting(cli, "Log directory") / name
    answer = cli.cli(f"logger add channel {name} {_CAPTURE_LEVELS}")
    # Asterisk creates the file at once; not seeing it means it is not ours to read.
    captured = not answer.strip() and capture.exists()
    problems: list[Problem] = []
    try:
        for command in RELOADS:
            out = cli.cli(command)
            if command.startswith("module reload") and "reloaded successfully" not in out:
                problems.append(Problem(f"{command}: {out.strip() or 'no answer'}"))
        if captured:
            cli.cli("core show version")
            problems += _logged(capture, expected=len(RELOADS) + 1)
    finally:
        cli.cli(f"logger remove channel {name}")
        with contextlib.suppress(OSError):
            capture.unlink()
    log.info("deploy.reloaded", commands=len(RELOADS), problems=len(problems), captured=captured)
    return Reloaded(tuple(problems), captured)


def _logged(capture: Path, *, expected: int) -> list[Problem]:
    """The warnings and errors in `capture`, once `expected` CLI connections are logged."""
    deadline = time.monotonic() + CAPTURE_WAIT_S
    text = capture.read_text(errors="replace")
    while len(_CONNECTED.findall(text)) < expected:
        if time.monotonic() > deadline:
            return [Problem(f"Asterisk's log of the reloads is incomplete after "
                            f"{CAPTURE_WAIT_S}s: {capture}")]
        # No notification exists for a file another process appends to.
        time.sleep(0.02)
        text = capture.read_text(errors="replace")
    problems = []
    for found in _LOGGED.finditer(text):
        message = found.group("message")
        at = _AT_LINE.search(message)
        if at is None:
            problems.append(Problem(f"Asterisk: {message}"))
        else:
            plain = (message[: at.start()] + message[at.end() :]).strip()
            problems.append(Problem(f"Asterisk: {plain}", Path(at["file"]), int(at["line"])))
    return problems


def apply(cli: CLI, config: Config, confdir: Path) -> Applied:
    """Render into `confdir`, reload what reads it, then check the result."""
    rendered = render(config, confdir)
    reloaded = reload(cli)
    return Applied(rendered, reloaded, tuple(verify(cli, config, confdir)))
