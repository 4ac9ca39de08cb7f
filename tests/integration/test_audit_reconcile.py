"""Reconcile against the sandbox's own CEL: what AMI missed is completed, clean calls stay."""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from telephony.audit import AuditEvent, Call, CallLeg, Outcome, verify
from telephony.audit.checkpoints import checkpoint_key
from telephony.audit.reconcile import SOURCE, ReconcileReport, reconcile
from telephony.config import Config
from telephony.db import make_engine
from tests.harness.sandbox import Sandbox
from tests.harness.service import ServeProcess
from tests.harness.sipp import run_scenario

pytestmark = pytest.mark.asterisk


def own_audit(sandbox: Sandbox, tmp_path: Path) -> Config:
    """The sandbox's config with an audit store of this test's own: the CEL file is shared by
    the whole session, the audit store must only hold this test's calls."""
    audit = dataclasses.replace(
        sandbox.config.audit,
        database_url=f"sqlite:///{tmp_path / 'audit.db'}",
        spool_path=str(tmp_path / "spool.jsonl"),
        checkpoint_path=str(tmp_path / "checkpoints.jsonl"),
    )
    return dataclasses.replace(sandbox.config, audit=audit)


def wait_for(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)  # files and the store announce nothing to a reader: poll them


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    yield db
    db.dispose()


def start_service(config: Config, log_path: Path) -> ServeProcess:
    proc = ServeProcess(config, log_path)
    proc.wait_ready()
    wait_for(lambda: bool(proc.events("ami.connected")), 15, "the service never logged in")
    return proc


def calls(engine: Engine) -> dict[str, Call]:
    with Session(engine, expire_on_commit=False) as session:
        return {call.linkedid: call for call in session.scalars(select(Call))}


def settled(engine: Engine, sandbox: Sandbox, since: datetime, count: int) -> ReconcileReport:
    """Reconcile once CEL shows ``count`` finished calls since ``since``."""

    def ready() -> bool:
        probe = reconcile(engine, sandbox.layout.cel_csv, since=since, settle_s=0, dry_run=True)
        return probe.calls_checked == count and probe.calls_in_progress == 0

    wait_for(ready, 15, f"CEL never showed {count} finished calls")
    return reconcile(engine, sandbox.layout.cel_csv, since=since, settle_s=0)


def test_calls_cut_off_by_a_crash_or_placed_while_down_are_completed_from_cel(
    no_leaks: Sandbox, tmp_path: Path, engine: Engine
) -> None:
    config = own_audit(no_leaks, tmp_path)
    since = datetime.now(UTC).replace(microsecond=0)
    service = start_service(config, tmp_path / "serve.log")
    try:
        with ThreadPoolExecutor(1) as pool:
            # Silent for 4 s: killed while the caller is in the IVR, the call carries on.
            cut = pool.submit(
                run_scenario, "uac_112.xml", no_leaks.sip_target,
                workdir=no_leaks.workdir, extra=("-d", "4000"),
            )  # fmt: skip
            wait_for(lambda: bool(calls(engine)), 10, "the call never reached the audit store")
            service.signal(signal.SIGKILL)
            assert service.proc.wait(10) == -signal.SIGKILL
            assert cut.result().ok
    finally:
        service.stop()
    [cut_id] = calls(engine)
    assert calls(engine)[cut_id].ended_at is None
    down = run_scenario(
        "uac_112.xml", no_leaks.sip_target, workdir=no_leaks.workdir, extra=("-d", "1000")
    )
    assert down.ok, down.output + down.errors
    assert no_leaks.wait_no_channels() == 0

    report = settled(engine, no_leaks, since, 2)

    assert report.calls_missing == 1 and report.legs_missing == 1
    assert report.legs_incomplete == 1 and report.events_backfilled >= 3
    differences = {d.linkedid: d for d in report.differences}
    assert differences[cut_id].legs_incomplete == (cut_id,)
    [down_id] = set(differences) - {cut_id}
    assert differences[down_id].call_missing and differences[down_id].legs_missing == (down_id,)
    audited = calls(engine)
    for linkedid in (cut_id, down_id):
        call = audited[linkedid]
        assert call.ended_at is not None and call.queued_at is not None, call
        assert call.outcome is Outcome.ABANDONED_IN_QUEUE
        assert call.caller is not None and call.caller.endswith("81234567890")
    with Session(engine) as session:
        legs = {leg.uniqueid: leg for leg in session.scalars(select(CallLeg))}
        assert legs[cut_id].backfilled and legs[down_id].backfilled
        assert legs[cut_id].ended_at is not None and legs[cut_id].hangup_cause is not None
        sources = {
            (e.linkedid, e.type): e.source
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        }
    assert sources[(cut_id, "Newchannel")] == "ami"
    assert sources[(cut_id, "Hangup")] == sources[(down_id, "Newchannel")] == SOURCE
    key = checkpoint_key(config)
    assert verify(engine, Path(config.audit.checkpoint_path), key).ok

    again = reconcile(engine, no_leaks.layout.cel_csv, since=since, settle_s=0)
    assert again.clean and again.calls_checked == 2


def test_a_call_recorded_without_outage_reconciles_clean(
    no_leaks: Sandbox, tmp_path: Path, engine: Engine
) -> None:
    config = own_audit(no_leaks, tmp_path)
    since = datetime.now(UTC).replace(microsecond=0)
    service = start_service(config, tmp_path / "serve.log")
    try:
        result = run_scenario(
            "uac_112.xml", no_leaks.sip_target, workdir=no_leaks.workdir, extra=("-d", "2000")
        )
        assert result.ok, result.output + result.errors
        wait_for(
            lambda: any(c.ended_at for c in calls(engine).values()), 15, "the call never ended"
        )

        report = settled(engine, no_leaks, since, 1)

        assert report.clean and report.events_backfilled == 0, report
    finally:
        assert service.stop() == 0
    assert verify(engine, Path(config.audit.checkpoint_path), checkpoint_key(config)).ok
