"""Every call leg reaches the audit store through AMI, hash-chained and verifiable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from telephony.audit import AuditEvent, Call, CallLeg, verify
from telephony.audit.checkpoints import checkpoint_key
from telephony.config import resolve_path
from telephony.db import make_engine
from tests.harness.sandbox import Sandbox
from tests.harness.service import ServeProcess
from tests.harness.sipp import run_scenario

pytestmark = pytest.mark.asterisk


@pytest.fixture
def service(no_leaks: Sandbox, tmp_path: Path) -> Iterator[ServeProcess]:
    proc = ServeProcess(no_leaks.config, tmp_path / "serve.log")
    try:
        proc.wait_ready()
        proc.wait_for("ami.connected", 15)
        yield proc
    finally:
        assert proc.stop() == 0


def wait_for_call(url: str, predicate: str, timeout: float = 15.0) -> Call:
    """Wait until the audit store holds an ended call whose caller is `predicate`."""
    engine = make_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with Session(engine) as session:
                call = session.scalars(
                    select(Call).where(Call.caller == predicate, Call.ended_at.is_not(None))
                ).first()
                if call is not None:
                    session.expunge(call)
                    return call
            if time.monotonic() > deadline:
                raise AssertionError(f"no ended call from {predicate} in the audit store")
            time.sleep(0.1)  # the store announces no commit to a reader: poll it
    finally:
        engine.dispose()


def test_one_call_gives_one_call_its_leg_and_an_ordered_verified_chain(
    no_leaks: Sandbox, service: ServeProcess
) -> None:
    result = run_scenario(
        # Silent for 12.5 s: through the IVR (10.5 s) into the queue, then hang up there.
        "uac_112.xml", no_leaks.sip_target, workdir=no_leaks.workdir, extra=("-d", "12500")
    )
    assert result.ok, result.output + result.errors
    url = no_leaks.config.audit.database_url
    # The IVR normalises the From user 081234567890 to E.164 (no PAI on this call).
    call = wait_for_call(url, "+6281234567890")
    assert call.outcome is not None and call.outcome.value == "abandoned-in-queue"
    engine = make_engine(url)
    with Session(engine) as session:
        legs = session.scalars(select(CallLeg).where(CallLeg.linkedid == call.linkedid)).all()
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.linkedid == call.linkedid).order_by(AuditEvent.seq)
        ).all()
    assert [leg.uniqueid for leg in legs] == [call.linkedid]
    assert legs[0].role.value == "caller" and legs[0].ended_at is not None
    types = [e.type for e in events]
    assert types[0] == "Newchannel" and types[-1] == "Hangup"
    assert "QueueCallerJoin" in types and "QueueCallerAbandon" in types
    assert types.index("UserEvent") < types.index("QueueCallerJoin")
    assert types.index("QueueCallerJoin") < types.index("QueueCallerAbandon")
    assert call.emergency_type == "unknown" and call.ivr_done_at is not None
    service.stop()
    report = verify(
        engine, resolve_path(no_leaks.config.audit.checkpoint_path), checkpoint_key(no_leaks.config)
    )
    engine.dispose()
    assert report.ok, report
