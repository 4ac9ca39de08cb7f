from __future__ import annotations

from pathlib import Path

import pytest

from telephony.config import load
from telephony.pbx.trunks import TrunkError, load_trunks

REPO = Path(__file__).resolve().parents[2]


def test_shipped_file_has_only_commented_examples_so_the_default_trunk_stands_alone() -> None:
    config = load(None, env={})
    (mno,) = load_trunks(REPO / "config" / "trunks.toml", config)
    assert (mno.endpoint, mno.networks, mno.trust_location) == ("trunk-mno", ("127.0.0.2",), True)
    assert mno.pidf_lo is True  # location.pidf_lo, on behind the edge


def test_extra_trunks_are_checked_and_named_in_errors(tmp_path: Path) -> None:
    config = load(None, env={})
    path = tmp_path / "trunks.toml"
    path.write_text('[[trunk]]\nname = "pbx"\nnetworks = ["10.0.0.0/24"]\n'
                    'trust_location = false\ncodecs = ["alaw"]\npidf_lo = true\n')
    _mno, pbx = load_trunks(path, config)
    assert (pbx.endpoint, pbx.trust_location, pbx.codecs) == ("trunk-pbx", False, ("alaw",))
    assert pbx.pidf_lo is True
    for bad, message in [
        ('name = "pbx"\nnetworks = ["10.0.0.300"]', "networks"),
        ('name = "pbx"\nnetworks = []', "at least one"),
        ('name = "mno"\nnetworks = ["10.0.0.1"]', "not 'mno'"),
        ('name = "pbx"\nnetworks = ["10.0.0.1"]\ncodecs = ["g729"]', "codecs"),
        ('name = "pbx"\nnetworks = ["10.0.0.1"]\ntrust_location = "yes"', "true or false"),
        ('name = "pbx"\nnetworks = ["10.0.0.1"]\npidf_lo = 1', "true or false"),
    ]:
        path.write_text(f"[[trunk]]\n{bad}\n")
        with pytest.raises(TrunkError, match=message) as err:
            load_trunks(path, config)
        assert str(path) in str(err.value)
