"""Shared fixtures: a real Asterisk sandbox per test session, with our own dialplans.

Provisioning failures fail the run: an integration suite that skips when Asterisk is
missing would pass in CI while testing nothing.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from telephony import config as config_mod
from telephony.audit import CallLeg
from telephony.audit.reconcile import read_cel, reconcile
from telephony.pbx.process import Asterisk
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.render import Layout, write_sandbox
from telephony.pbx.sandbox import install_for
from telephony.store import open_database
from tests.support.net import free_port

LEAK_WAIT_S = 10.0


@dataclass
class Sandbox:
    config: config_mod.Config
    asterisk: Asterisk
    workdir: Path

    @property
    def layout(self) -> Layout:
        return self.asterisk.layout

    @property
    def sip_target(self) -> str:
        return f"{self.config.asterisk.sip_bind}:{self.config.asterisk.sip_port}"

    def wait_no_channels(self, timeout: float = LEAK_WAIT_S) -> int:
        """Wait until Asterisk has no channels; return how many are left at the deadline."""
        deadline = time.monotonic() + timeout
        count = self.asterisk.channel_count()
        while count and time.monotonic() < deadline:
            time.sleep(0.1)
            count = self.asterisk.channel_count()
        return count


def sandbox_config(root: Path, *overrides: str) -> config_mod.Config:
    """A config for an isolated sandbox on free ports, with the testsuite's short SIP timers."""
    return config_mod.load(
        None,
        env={},
        overrides=[
            f"asterisk.runtime_dir={root / 'asterisk'}",
            f"asterisk.sip_port={free_port(socket.SOCK_DGRAM)}",
            f"asterisk.ami_port={free_port()}",
            f"agi.port={free_port()}",
            f"health.port={free_port()}",
            "asterisk.timer_t1=100",
            f"audit.database_url=sqlite:///{root / 'telephony.db'}",
            f"audit.spool_path={root / 'audit-spool.jsonl'}",
            f"audit.quarantine_path={root / 'audit-quarantine.jsonl'}",
            f"audit.overflow_path={root / 'audit-overflow.jsonl'}",
            f"audit.checkpoint_path={root / 'audit-checkpoints.jsonl'}",
            f"audit.checkpoint_key_file={root / 'audit-hmac.key'}",
            f"recording.directory={root / 'recordings'}",
            *overrides,
        ],
    )


def start_sandbox(install: AsteriskInstall, root: Path, *overrides: str) -> Sandbox:
    config = sandbox_config(root, *overrides)
    layout = Layout(Path(config.asterisk.runtime_dir))
    write_sandbox(config, install, layout)
    asterisk = Asterisk(install, layout)
    asterisk.start(config.asterisk.boot_timeout_s)
    return Sandbox(config, asterisk, root)


@pytest.fixture(scope="session")
def asterisk_install() -> AsteriskInstall:
    return install_for(config_mod.load(None, env={}))


def assert_audit_matches_cel(box: Sandbox) -> None:
    """Every leg Asterisk's own CEL record has is in our audit, and nothing else is.

    Calls made while no `telephony serve` was listening reach the audit through reconcile,
    which is exactly what a centre runs after an outage.
    """
    engine = open_database(box.config)
    try:
        # Asterisk has stopped, so every call has ended, even one whose last CEL second is
        # now (reconcile leaves a call that ended within CEL's 1 s resolution for later).
        later = datetime.now(UTC) + timedelta(seconds=2)
        reconcile(engine, box.layout.cel_csv, settle_s=0, now=later)
        in_cel = {record.uniqueid for record in read_cel(box.layout.cel_csv).records}
        with Session(engine) as session:
            in_audit = set(session.scalars(select(CallLeg.uniqueid)))
    finally:
        engine.dispose()
    assert in_audit == in_cel, (
        f"audit only: {sorted(in_audit - in_cel)}; CEL only: {sorted(in_cel - in_audit)}"
    )


@pytest.fixture(scope="session")
def sandbox(
    asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    # The suite exercises location by value with well-formed PIDF-LO; the default (off) has
    # its own sandbox in test_location.
    root = tmp_path_factory.mktemp("sandbox")
    box = start_sandbox(asterisk_install, root, "location.pidf_lo=true")
    try:
        yield box
    finally:
        box.asterisk.stop()
    assert_audit_matches_cel(box)


@pytest.fixture
def no_leaks(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The session sandbox, checked after the test for channels left behind."""
    yield sandbox
    left = sandbox.wait_no_channels()
    assert left == 0, f"{left} channel(s) leaked:\n{sandbox.asterisk.cli('core show channels')}"
