from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.net import free_port


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


def test_operators_add_and_remove_off_the_sandbox_print_the_deploy_apply_to_run(
    tmp_path: Path,
) -> None:
    """On a production host (no sandbox running) the roster reaches Asterisk only through
    `deploy apply`: the command prints it, runnable as it stands, with the same options."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    roster = tmp_path / "operators.toml"
    roster.write_text("")
    flags = [
        "--set", f"operators.file={roster}",
        "--set", f"asterisk.runtime_dir={tmp_path / 'asterisk'}",
        "--set", f"audit.database_url=sqlite:///{tmp_path / 'audit.db'}",
    ]  # fmt: skip
    expected = shlex.join(
        ["telephony", *flags, "deploy", "apply", "--asterisk-cli", "asterisk -rx"]
    )
    added = subprocess.run(
        _telephony(*flags, "operators", "add", "new1", "--regency", "35.78", "--password-stdin"),
        input="long-enough-secret\n", capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    assert added.stdout.splitlines()[-1] == f"on a production Asterisk, apply it now: {expected}"
    removed = subprocess.run(
        _telephony(*flags, "operators", "remove", "new1"),
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    # Not applied to a running Asterisk's queues (exit 4), and the same command to run.
    assert removed.stdout.splitlines()[-1].endswith(expected), removed.stdout + removed.stderr
