"""Find or build an Asterisk (20.12, 21.7, 22.2 or newer) to run our dialplans against.

A system Asterisk on PATH wins. Otherwise Debian sid's package (Debian 12/13 main has none)
is installed into a debootstrap tree cached outside the clone. That tree's binary is run
through the tree's own dynamic loader, so no chroot, bind mounts or /proc mount are
needed, and the runtime directories can live anywhere on the host.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import structlog

from telephony.errors import TelephonyError

log = structlog.get_logger(__name__)

# The first release of each branch with the AOR option qualify_2xx_only, which the operators'
# AORs behind the edge need (pjsip_112.conf); older ones would refuse those AORs.
MIN_RELEASES = {20: 12, 21: 7, 22: 2}
MIN_TEXT = "20.12, 21.7 or 22.2"
_MARKER = ".telephony-provisioned"
_MULTIARCH = ("x86_64-linux-gnu", "aarch64-linux-gnu")
_LOADERS = ("lib64/ld-linux-x86-64.so.2", "lib/ld-linux-aarch64.so.1")


class ProvisionError(TelephonyError):
    """Asterisk could not be found or built; the message says what to do."""


@dataclass(frozen=True)
class AsteriskInstall:
    """How to run one Asterisk: the argv prefix, and the directories that come with it."""

    command: tuple[str, ...]
    moddir: Path
    datadir: Path
    version: str
    origin: str

    @property
    def major(self) -> int:
        return parse_release(self.version)[0]


def parse_release(version: str) -> tuple[int, int]:
    """`Asterisk 22.10.1+dfsg+~cs6-1` -> (22, 10); (0, 0) when it cannot be read."""
    match = re.search(r"Asterisk\s+(?:certified/)?(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def supported(version: str) -> bool:
    major, minor = parse_release(version)
    oldest = min(MIN_RELEASES)
    return major > max(MIN_RELEASES) or (major >= oldest and minor >= MIN_RELEASES[major])


def _version(command: tuple[str, ...]) -> str:
    try:
        out = subprocess.run(
            [*command, "-V"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return ""
    return out.stdout.strip()


def _first_dir(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.is_dir()), None)


def system_asterisk(binary: str = "asterisk") -> AsteriskInstall | None:
    path = shutil.which(binary)
    if path is None:
        return None
    version = _version((path,))
    if not supported(version):
        log.info("asterisk.system_too_old", path=path, version=version, needs=MIN_TEXT)
        return None
    moddir = _first_dir(
        *(Path("/usr/lib") / arch / "asterisk/modules" for arch in _MULTIARCH),
        Path("/usr/lib/asterisk/modules"),
        Path("/usr/lib64/asterisk/modules"),
    )
    datadir = _first_dir(Path("/usr/share/asterisk"), Path("/var/lib/asterisk"))
    if moddir is None or datadir is None:
        return None
    return AsteriskInstall((path,), moddir, datadir, version, f"system {path}")


def tree_asterisk(root: Path) -> AsteriskInstall | None:
    """The Asterisk inside a debootstrap tree, if the tree is complete and it runs."""
    if not (root / _MARKER).is_file():
        return None
    loader = next((root / p for p in _LOADERS if (root / p).exists()), None)
    arch = next((a for a in _MULTIARCH if (root / "usr/lib" / a).is_dir()), None)
    if loader is None or arch is None:
        return None
    libs = f"{root}/usr/lib/{arch}:{root}/lib/{arch}"
    command = (str(loader), "--library-path", libs, str(root / "usr/sbin/asterisk"))
    version = _version(command)
    if not supported(version):
        return None
    return AsteriskInstall(
        command,
        root / "usr/lib" / arch / "asterisk/modules",
        root / "usr/share/asterisk",
        version,
        f"debian sid tree {root}",
    )


def _run(argv: list[str], what: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ProvisionError(f"{what} failed (exit {result.returncode}):\n{tail}")


def build_tree(root: Path) -> None:
    """debootstrap Debian sid and install its asterisk package into `root`."""
    if os.geteuid() != 0:
        raise ProvisionError(
            "building the Asterisk tree needs root (debootstrap); run as root, "
            f"or install Asterisk {MIN_TEXT} or newer on PATH"
        )
    if shutil.which("debootstrap") is None:
        raise ProvisionError("debootstrap is not installed: apt-get install debootstrap")
    if root.exists():
        shutil.rmtree(root)
    staging = root.with_name(root.name + ".building")
    if staging.exists():
        shutil.rmtree(staging)
    staging.parent.mkdir(parents=True, exist_ok=True)
    log.info("asterisk.tree_building", root=str(root))
    _run(["debootstrap", "--variant=minbase", "sid", str(staging)], "debootstrap sid")
    # The mirror may be a dated snapshot whose Release file reads as expired.
    apt = ["chroot", str(staging), "apt-get", "-o", "Acquire::Check-Valid-Until=false"]
    _run([*apt, "update", "-q"], "apt-get update in the sid tree")
    _run(
        [*apt, "install", "-y", "-q", "--no-install-recommends", "asterisk"],
        "apt-get install asterisk in the sid tree",
    )
    (staging / _MARKER).write_text("asterisk\n")
    staging.rename(root)


def provision(binary: str, cache_dir: Path, rebuild: bool = False) -> AsteriskInstall:
    """Return a working Asterisk: `binary` ("auto" or a path), else the cached sid tree."""
    if binary != "auto":
        found = system_asterisk(binary)
        if found is None:
            raise ProvisionError(
                f"asterisk.binary={binary!r} is not an Asterisk {MIN_TEXT} or newer"
            )
        return found
    found = system_asterisk()
    if found is not None:
        return found
    root = cache_dir / "asterisk-root"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / "provision.lock").open("w") as lock:
        # Parallel test runs share the cache; only one of them builds it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        tree = None if rebuild else tree_asterisk(root)
        if tree is None:
            build_tree(root)
            tree = tree_asterisk(root)
        if tree is None:
            raise ProvisionError(f"the Asterisk tree at {root} was built but does not run")
    return tree
