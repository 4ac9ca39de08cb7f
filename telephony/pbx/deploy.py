"""Put our include files onto a production Asterisk that also serves contexts not ours.

The sandbox renders through the same `render_includes`, so what the tests exercise is what
production gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from telephony.config import Config
from telephony.pbx.render import INCLUDE_FILES, is_ours, render_includes


class DeployError(Exception):
    """Rendering would overwrite someone else's file, or the config is not fit for production."""


@dataclass(frozen=True)
class Rendered:
    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]
    include_lines: dict[str, str]


def include_lines() -> dict[str, str]:
    """The `#include` line each main file needs, keyed by main file name."""
    return {name.replace("_112", ""): f"#include {name}" for name in INCLUDE_FILES}


def render(config: Config, target: Path) -> Rendered:
    """Write our include files into `target`; refuse to replace a file we did not write."""
    if not config.ami.secret:
        raise DeployError(
            "ami.secret is empty: set it (for example TELEPHONY_AMI_SECRET) for a production "
            "Asterisk, and give the service the same value"
        )
    files = render_includes(config, config.ami.secret)
    foreign = [target / n for n in files if (target / n).exists() and not is_ours(target / n)]
    if foreign:
        names = ", ".join(str(p) for p in foreign)
        raise DeployError(f"refusing to overwrite files telephony did not write: {names}")
    target.mkdir(parents=True, exist_ok=True)
    written, unchanged = [], []
    for name, text in files.items():
        path = target / name
        if path.exists() and path.read_text() == text:
            unchanged.append(path)
            continue
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        written.append(path)
    return Rendered(tuple(written), tuple(unchanged), include_lines())
