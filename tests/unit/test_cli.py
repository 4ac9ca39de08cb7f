from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.support.net import free_port


def _telephony(*args: str) -> list[str]:
    return [sys.executable, "-m", "telephony.cli", *args]


def test_help_lists_the_commands() -> None:
    out = subprocess.run(_telephony("--help"), capture_output=True, text=True, check=True)
    for command in ("serve", "asterisk"):
        assert command in out.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_logs_readiness_as_json_and_exits_cleanly_on_signal(sig: signal.Signals) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    argv = _telephony("--set", f"agi.port={free_port()}", "serve")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    ready = None
    for line in proc.stdout:
        record = json.loads(line)
        if record["event"] == "telephony ready":
            ready = record
            break
    assert ready is not None and ready["level"] == "info"
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == 0
    rest = [json.loads(line)["event"] for line in proc.stdout]
    assert rest[-1] == "telephony stopped"
