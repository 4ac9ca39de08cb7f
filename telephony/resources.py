"""The files the product ships besides its code: dialplans/, ivr_prompts/, config/ and
kamailio/.

They live at the top of the checkout (the layout is part of the product) and
`telephony/data/` links to them, so the wheel carries them as package data and
importlib.resources finds them in the same place from a wheel and from the checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SHIPPED = ("dialplans", "ivr_prompts", "config", "kamailio")


def shipped(name: str) -> Path:
    """The shipped folder (or a file in it), e.g. ``shipped("config/regions.toml")``."""
    if name.split("/", 1)[0] not in SHIPPED:
        raise ValueError(f"{name!r} is not under one of {', '.join(SHIPPED)}")
    # Installed packages are plain directories (pip unpacks wheels), so this is a Path;
    # Jinja2 and Asterisk need real file names.
    return Path(str(files("telephony").joinpath("data", name))).resolve()


def located(value: str) -> Path:
    """A configured path: ~ expanded, relative to the working directory; a relative path
    into one of the shipped folders that the working directory does not hold (an
    installed product run from elsewhere) is the shipped copy."""
    path = Path(value).expanduser()
    if not path.is_absolute() and not path.exists() and path.parts[:1] in {(s,) for s in SHIPPED}:
        return shipped(path.as_posix())
    return path.resolve()
