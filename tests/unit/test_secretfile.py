"""Issue 12 (6c): a generated secret is never empty, and its file is 0600 from the start."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from telephony.secretfile import read_or_create


def test_created_once_0600_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ami.secret"
    first = read_or_create(path)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_create(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["ami.secret"]


@pytest.mark.parametrize("left", ["", "\n", "  \n\n"])
def test_a_file_a_crash_left_empty_counts_as_missing(tmp_path: Path, left: str) -> None:
    path = tmp_path / "audit-hmac.key"
    path.write_text(left)
    secret = read_or_create(path)
    assert len(secret) >= 32
    assert path.read_text().strip() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_create(path) == secret


def test_an_existing_secret_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "ami.secret"
    path.write_text("configured-before\n")
    assert read_or_create(path) == "configured-before"
