"""Both AMI and AGI libraries install into the `asterisk` namespace; both must import."""

from __future__ import annotations

import subprocess
import sys


def test_pyst2_and_asterisk_ami_both_import_in_a_fresh_interpreter() -> None:
    code = (
        "from asterisk.agi import AGI; from asterisk.ami import AMIClient, SimpleAction; "
        "import pjsua2; print(AGI.__name__, AMIClient.__name__, SimpleAction.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["AGI", "AMIClient", "SimpleAction"]
