from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port


def _telephony(*args: str) -> list[str]:
    return [sys.executable, "-m", "telephony.cli", *args]


def test_help_lists_the_commands() -> None:
    out = subprocess.run(_telephony("--help"), capture_output=True, text=True, check=True)
    for command in ("serve", "asterisk"):
        assert command in out.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_logs_readiness_as_json_and_exits_cleanly_on_signal(
    sig: signal.Signals, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    flags = [
        f"agi.port={free_port()}",
        f"health.port={free_port()}",
        f"asterisk.ami_port={free_port()}",
        f"asterisk.runtime_dir={tmp_path / 'asterisk'}",
        f"audit.database_url=sqlite:///{tmp_path / 'audit.db'}",
        f"audit.spool_path={tmp_path / 'spool.jsonl'}",
        f"audit.checkpoint_path={tmp_path / 'checkpoints.jsonl'}",
        f"audit.checkpoint_key_file={tmp_path / 'hmac.key'}",
    ]
    argv = _telephony(*(arg for flag in flags for arg in ("--set", flag)), "serve")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    ready = None
    for line in proc.stdout:
        record = json.loads(line)
        if record["event"] == "service.ready":
            ready = record
            break
    assert ready is not None and ready["level"] == "info"
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == 0
    rest = [json.loads(line)["event"] for line in proc.stdout]
    assert rest[-1] == "service.stopped"
