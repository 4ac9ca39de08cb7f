"""An isolated sandbox Asterisk on free ports, for the tests, the bench and the drills.

It is the product's own sandbox (`telephony asterisk up`, telephony.pbx.sandbox) with a
configuration of its own: every port free, every file under one root directory. As in
production by default, the SIP edge (Kamailio) runs in front of Asterisk: the trunk's
callers send to `sip_target`, the edge's trunk port; the operators' phones register at
`phone_target`, the edge's phone port (Asterisk with `edge.registrar=false`). With
`edge.enabled=false` (direct mode) both are Asterisk. `asterisk_target` is Asterisk itself,
for a test that goes round the edge on purpose.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from telephony import config as config_mod
from telephony.audit import CallLeg
from telephony.audit.reconcile import read_cel, reconcile
from telephony.edge.process import Kamailio
from telephony.operators.roster import ha1
from telephony.pbx import sandbox
from telephony.pbx.layout import Layout
from telephony.pbx.process import Asterisk
from telephony.pbx.provision import AsteriskInstall
from telephony.store import open_database
from tests.harness.net import free_port, free_udp

LEAK_WAIT_S = 10.0
# Kamailio's own address toward Asterisk (edge.inside_address's default).
INSIDE = "127.0.0.10"
# Direct mode: no edge, the trunk sends to Asterisk, which then must not parse PIDF-LO.
DIRECT = ("edge.enabled=false", "location.pidf_lo=false")


@dataclass
class Sandbox:
    config: config_mod.Config
    asterisk: Asterisk
    workdir: Path
    edge: Kamailio | None = None

    @property
    def layout(self) -> Layout:
        return self.asterisk.layout

    @property
    def sip_target(self) -> str:
        """Where the trunk sends: the edge, or Asterisk in direct mode."""
        if self.edge is not None:
            return f"{self.config.edge.bind}:{self.config.edge.port}"
        return self.asterisk_target

    @property
    def phone_target(self) -> str:
        """Where the operators' phones register: the edge's phone port, or Asterisk."""
        return phone_target(self.config, edge_running=self.edge is not None)

    @property
    def asterisk_target(self) -> str:
        """Asterisk's own SIP address (UDP), edge or not."""
        return asterisk_target(self.config)

    def stop(self) -> None:
        """Asterisk first (a graceful stop lets calls end, through the edge), then the edge."""
        try:
            self.asterisk.stop()
        finally:
            if self.edge is not None:
                self.edge.stop()

    def wait_no_channels(self, timeout: float = LEAK_WAIT_S) -> int:
        """Wait until Asterisk has no channels; return how many are left at the deadline."""
        return wait_no_channels(self.asterisk, timeout)


def wait_no_channels(asterisk: Asterisk, timeout: float = LEAK_WAIT_S) -> int:
    """Wait until `asterisk` has no channels; return how many are left at the deadline."""
    deadline = time.monotonic() + timeout
    count = asterisk.channel_count()
    while count and time.monotonic() < deadline:
        time.sleep(0.1)  # Asterisk pushes no "last channel gone" event to the CLI: poll
        count = asterisk.channel_count()
    return count


def contact_line(box: Sandbox | Asterisk, op: str) -> str:
    asterisk = box.asterisk if isinstance(box, Sandbox) else box
    for line in asterisk.cli("pjsip show contacts").splitlines():
        if line.strip().startswith(f"Contact:  {op}/"):
            return line
    return ""


def wait_contact(
    box: Sandbox | Asterisk, op: str, status: str = "Avail", timeout: float = 10.0
) -> str:
    """Poll Asterisk until `op`'s contact has qualify status `status` (Avail, Unavail).

    Behind the edge's registrar, a phone that has just registered is ringable only once
    Asterisk qualified it through the edge: at once while telephony serve runs (the edge
    tells it), else at the next qualify (every 5 s); an Originate before it fails."""
    deadline = time.monotonic() + timeout
    while True:
        line = contact_line(box, op)
        if f" {status} " in line:
            return line
        assert time.monotonic() < deadline, f"{op}'s contact never became {status}: {line!r}"
        time.sleep(0.1)  # qualify results reach the CLI with no event to this test: poll


def asterisk_target(config: config_mod.Config) -> str:
    return f"{config.asterisk.sip_bind}:{config.asterisk.sip_port}"


def phone_target(config: config_mod.Config, *, edge_running: bool) -> str:
    """Where operators' phones register (UDP): the edge's phone port when the edge runs
    with its registrar (the default), else Asterisk."""
    if edge_running and config.edge.phones_via_edge:
        return f"{config.edge.bind}:{config.edge.phone_port}"
    return asterisk_target(config)


def production_roster(directory: Path) -> Path:
    """A roster as production has it: HA1 digests only, no demo passwords."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "operators.toml"
    path.write_text('[[operator]]\nid = "op1"\nregency = "35.73"\n'
                    f'ha1 = "{ha1("op1", "a-long-secret")}"\n')
    return path


def sandbox_config(
    root: Path, *overrides: str, short_timers: bool = True
) -> config_mod.Config:
    """A config for an isolated sandbox on free ports, everything kept under `root`; with
    `short_timers`, the testsuite's short SIP timers (the bench keeps the defaults)."""
    return config_mod.load(
        None,
        env={},
        overrides=[
            f"asterisk.runtime_dir={root / 'asterisk'}",
            f"asterisk.sip_port={free_udp()}",
            f"asterisk.ami_port={free_port()}",
            f"agi.port={free_port()}",
            f"health.port={free_port()}",
            *(["asterisk.timer_t1=100"] if short_timers else []),
            f"audit.database_url=sqlite:///{root / 'telephony.db'}",
            f"audit.spool_path={root / 'audit-spool.jsonl'}",
            f"audit.quarantine_path={root / 'audit-quarantine.jsonl'}",
            f"audit.overflow_path={root / 'audit-overflow.jsonl'}",
            f"audit.checkpoint_path={root / 'audit-checkpoints.jsonl'}",
            f"audit.checkpoint_key_file={root / 'audit-hmac.key'}",
            f"recording.directory={root / 'recordings'}",
            f"messages.sound_dir={root / 'messages'}",
            f"edge.runtime_dir={root / 'kamailio'}",
            f"edge.port={free_udp()}",
            f"edge.inside_address={INSIDE}",
            f"edge.inside_port={free_udp(INSIDE)}",
            f"edge.rpc_port={free_port()}",
            f"edge.validator_port={free_port()}",
            f"edge.probe_port={free_udp()}",
            f"edge.phone_port={free_udp()}",
            f"edge.phone_tls_port={free_port()}",
            *overrides,
        ],
    )


def start_sandbox(
    install: AsteriskInstall,
    root: Path,
    *overrides: str,
    config: config_mod.Config | None = None,
    edit: Callable[[Layout], None] | None = None,
) -> Sandbox:
    """Render and start a sandbox: `sandbox_config(root, *overrides)` unless `config`; and
    the edge in front of it unless the config says direct mode."""
    config = config or sandbox_config(root, *overrides)
    asterisk = sandbox.start(config, install, edit=edit)
    if not config.edge.enabled:
        return Sandbox(config, asterisk, root)
    edge = Kamailio(config)
    try:
        edge.start()
    except BaseException:
        asterisk.stop()
        raise
    return Sandbox(config, asterisk, root, edge)


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
