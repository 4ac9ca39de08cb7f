"""Put the edge's files into a production Kamailio directory (e.g. /etc/kamailio), check
them, and put them into effect, with the discipline of Asterisk's include files: every file
is marked as ours, and a file of the same name that is not marked is never overwritten.

kamailio.cfg is a whole configuration, not an include (Kamailio's routing blocks do not
compose with someone else's), so the edge owns the files it writes and nothing else in the
directory. What a running Kamailio can take without a restart is reloaded: the trunks'
address list over JSON-RPC (`permissions.addressReload`), the phones' credentials by
itself (db_text re-reads a changed table). A changed kamailio.cfg needs a restart, which
forgets every phone's registration (they are back within `max_expires`, 2 min) and the
dialogs' state: `apply` restarts only when asked to (`--restart-edge`), and only through
systemd.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from telephony.config import Config
from telephony.edge.process import kamailio_binary, syntax_check
from telephony.edge.render import (
    EdgeError,
    EdgeLayout,
    foreign,
    is_ours,
    render,
    write_subscriber_table,
)
from telephony.edge.stats import RpcClient
from telephony.pbx.check import Problem

log = structlog.get_logger(__name__)

UNIT = "telephony-edge.service"
PUBLIC_MODE = 0o644
# systemd is running when this exists (sd_booted(3)).
SYSTEMD = Path("/run/systemd/system")


@dataclass(frozen=True)
class Installed:
    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]


@dataclass(frozen=True)
class Effect:
    """What `apply` did to the running edge, one line each, and what it could not do."""

    done: tuple[str, ...]
    problems: tuple[Problem, ...]


def refuse_foreign(config: Config, layout: EdgeLayout) -> dict[Path, str]:
    """The edge's files as rendered, unless one of them would replace a file not ours;
    deploy asks before it writes anything, Asterisk's files included."""
    files = render(config, layout)
    if refused := foreign(files):
        names = ", ".join(str(p) for p in refused)
        raise EdgeError(
            f"refusing to overwrite files telephony did not write: {names} (Debian's sample "
            "kamailio.cfg: move it aside, and disable kamailio.service, which "
            f"{UNIT} replaces)"
        )
    return files


def install(config: Config, layout: EdgeLayout) -> Installed:
    """Write the edge's files into `layout.conf`; refuse to replace one we did not write."""
    files = refuse_foreign(config, layout)
    written, unchanged = [], []
    for path, text in files.items():
        if path.exists() and path.read_text() == text:
            unchanged.append(path)
            continue
        if path == layout.subscribers:
            write_subscriber_table(layout, text)
        else:
            _write(path, text)
        written.append(path)
    return Installed(tuple(written), tuple(unchanged))


def _write(path: Path, text: str) -> None:
    """Atomically, world-readable: kamailio.cfg and the address list hold no secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PUBLIC_MODE)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def verify(config: Config, layout: EdgeLayout) -> list[Problem]:
    """The installed files are ours and current, kamailio.cfg passes `kamailio -c`, and the
    running edge answers and started after its kamailio.cfg was last written."""
    problems: list[Problem] = []
    for path, text in render(config, layout).items():
        if not path.exists():
            problems.append(Problem("missing: run telephony deploy apply", path))
        elif not is_ours(path):
            problems.append(Problem("not written by telephony (no marker)", path))
        elif path.read_text() != text:
            problems.append(Problem("not what the configuration renders now: run "
                                    "telephony deploy apply", path))
    if layout.cfg.exists():
        with tempfile.TemporaryDirectory(prefix="telephony-edge-check-") as run_dir:
            try:
                syntax_check(kamailio_binary(config), layout.cfg, Path(run_dir))
            except EdgeError as exc:
                problems.append(Problem(str(exc), layout.cfg))
    problems += _running(config, layout)
    return problems


def _running(config: Config, layout: EdgeLayout) -> list[Problem]:
    rpc = RpcClient("127.0.0.1", config.edge.rpc_port)
    if not rpc.answers():
        return [Problem(f"the edge does not answer JSON-RPC on 127.0.0.1:{config.edge.rpc_port}: "
                        f"is {UNIT} (telephony edge run) running?")]
    # Kamailio writes its pid file as it starts; JSON-RPC's uptime is whole seconds only.
    try:
        started = layout.pidfile.stat().st_mtime
    except OSError:
        started = time.time() - int(rpc.call("core.uptime")["uptime"]) - 1
    if layout.cfg.exists() and layout.cfg.stat().st_mtime > started:
        return [Problem(f"changed after the running edge started: restart it (systemctl "
                        f"restart {UNIT}, or --restart-edge) at a quiet moment", layout.cfg)]
    return []


def put_into_effect(
    config: Config, layout: EdgeLayout, installed: Installed, *, restart: bool
) -> Effect:
    """Reload in the running edge what changed and can be reloaded; restart for a changed
    kamailio.cfg only when asked to, and only where systemd can do it."""
    done: list[str] = []
    problems: list[Problem] = []
    changed = set(installed.written)
    rpc = RpcClient("127.0.0.1", config.edge.rpc_port)
    if layout.cfg in changed:
        if not restart:
            done.append(f"not restarted: {layout.cfg} changed; the running edge keeps the old "
                        "one until restarted (--restart-edge, or systemctl restart "
                        f"{UNIT}); phones re-register within 2 min after a restart")
        elif SYSTEMD.is_dir():
            _systemctl("restart", UNIT)
            done.append(f"restarted {UNIT}")
            return Effect(tuple(done), ())
        else:
            problems.append(Problem(
                "--restart-edge: no systemd here, so nothing restarts the edge: restart "
                "whatever supervises `telephony edge run` (scripts/run restarts it when it "
                "exits)", layout.cfg))
    if layout.addresses in changed:
        if rpc.answers():
            rpc.call("permissions.addressReload")
            done.append(f"reloaded  {layout.addresses} (permissions.addressReload)")
        else:
            done.append(f"not reloaded: {layout.addresses} (the edge is not running; it reads "
                        "the file when it starts)")
    if layout.subscribers in changed:
        done.append(f"{layout.subscribers}: Kamailio re-reads it by itself (db_text)")
    log.info("edge.deployed", written=len(changed), restart=restart)
    return Effect(tuple(done), tuple(problems))


def _systemctl(*argv: str) -> None:
    try:
        out = subprocess.run(["systemctl", *argv], capture_output=True, text=True,
                             timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EdgeError(f"systemctl {' '.join(argv)} failed: {exc}") from exc
    if out.returncode != 0:
        raise EdgeError(f"systemctl {' '.join(argv)} failed: {(out.stdout + out.stderr).strip()}")
