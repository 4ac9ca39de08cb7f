"""Secrets that must exist but that nobody configured: generated once, kept in a 0600 file."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def _stored(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def read_or_create(path: Path) -> str:
    """The secret stored at `path`, created on first use; the same on every later call.

    An empty file (a crash between creating and writing it) counts as missing: an empty
    secret would be a valid, guessable key. The new secret is written to a temporary 0600
    file and renamed into place, so no reader ever sees a half-written one.
    """
    secret = _stored(path)
    if secret:
        return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            # An empty file, unless another process has just filled it in.
            if not _stored(path):
                os.replace(tmp, path)
        else:
            # First creator wins: link fails if another process got there first.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return _stored(path)
