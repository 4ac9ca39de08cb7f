"""Both AMI and AGI libraries install into the `asterisk` namespace; both must import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from telephony.resources import located, shipped


def test_pyst2_and_asterisk_ami_both_import_in_a_fresh_interpreter() -> None:
    code = (
        "from asterisk.agi import AGI; from asterisk.ami import AMIClient, SimpleAction; "
        "import pjsua2; print(AGI.__name__, AMIClient.__name__, SimpleAction.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["AGI", "AMIClient", "SimpleAction"]


def test_shipped_defaults_are_found_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_checkout = located("config/regions.toml")
    monkeypatch.chdir(tmp_path)
    assert located("config/regions.toml") == in_checkout == shipped("config/regions.toml")
    assert (located("dialplans") / "extensions_112.conf").is_file()
    assert (located("ivr_prompts") / "id" / "welcome.wav").is_file()
    # What the working directory holds wins, and other relative paths stay relative to it.
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "regions.toml").write_text("")
    assert located("config/regions.toml") == tmp_path / "config" / "regions.toml"
    assert located("var/telephony.db") == tmp_path / "var" / "telephony.db"
