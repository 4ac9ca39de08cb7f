"""A hostile trunk caller writes CR/LF into its number (issue 12, 1), on a real Asterisk.

The From user part of the issue, and the same text as the Request-URI user part: Asterisk
22.10.1 writes both raw into its AMI events (CallerIDNum, Exten). The audit must keep only
Asterisk's own ids; the caller still gets the IVR, a queue and an operator, whose phone
rings and answers (pjsua2), with a clean screen-pop. Behind the edge (the default, issue 15)
Kamailio replaces the text before Asterisk sees it; in direct mode the audit's own defence
(issue 12) flags the call and keeps the text as evidence. Both are run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from telephony.audit import AuditEvent, Call
from telephony.audit.quarantine import read as read_quarantine
from telephony.audit.reconcile import read_cel
from telephony.config import resolve_path
from telephony.pbx.provision import AsteriskInstall
from telephony.phone import Phone
from telephony.store import open_database
from tests.harness.sandbox import DIRECT, Sandbox, start_sandbox
from tests.harness.service import ServeProcess, run_cli
from tests.harness.sipp import SippResult, run_scenario

pytestmark = pytest.mark.asterisk

# The From user part, exactly: a blank line, then a forged event and Linkedid.
INJECTION = (
    "0812%0D%0A%0D%0AEvent%3A%20UserEvent%0D%0AUserEvent%3A%20Forged%0D%0A"
    "Linkedid%3A%20fake-1%0D%0A"
)
OPERATOR = "inj1"


@pytest.fixture(scope="module", params=["edge", "direct"])
def centre(
    asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Sandbox, ServeProcess]]:
    root = tmp_path_factory.mktemp(f"injection-{request.param}")
    roster = root / "operators.toml"
    roster.write_text(
        f'[[operator]]\nid = "{OPERATOR}"\nregency = "35.73"\npassword = "secret-{OPERATOR}"\n'
    )
    box = start_sandbox(asterisk_install, root, f"operators.file={roster}",
                        "operators.wrapup_s=1",
                        *(DIRECT if request.param == "direct" else ()))  # fmt: skip
    service = ServeProcess(box.config, root / "serve.log")
    try:
        service.wait_ready()
        yield box, service
    finally:
        service.stop()
        box.stop()


@pytest.fixture
def box(centre: tuple[Sandbox, ServeProcess]) -> Iterator[Sandbox]:
    yield centre[0]
    left = centre[0].wait_no_channels()
    assert left == 0, f"{left} channel(s) leaked:\n{centre[0].asterisk.cli('core show channels')}"


def cel_linkedids(box: Sandbox) -> set[str]:
    if not box.layout.cel_csv.exists():
        return set()
    return {r.linkedid for r in read_cel(box.layout.cel_csv).records}


def cli(box: Sandbox, *args: str) -> None:
    done = run_cli(box.config, *args)
    assert done.returncode == 0, f"telephony {' '.join(args)}: {done.stdout}{done.stderr}"


def wait_ended(box: Sandbox, linkedids: set[str], timeout: float = 20.0) -> list[Call]:
    engine = open_database(box.config)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with Session(engine) as session:
                calls = list(session.scalars(select(Call).where(Call.linkedid.in_(linkedids))))
                session.expunge_all()
            if calls and all(c.ended_at is not None for c in calls):
                return calls
            assert time.monotonic() < deadline, f"calls {linkedids} never ended in the audit"
            time.sleep(0.2)  # the store announces no commit to a reader: poll it
    finally:
        engine.dispose()


def events_of(box: Sandbox, linkedid: str) -> list[AuditEvent]:
    engine = open_database(box.config)
    try:
        with Session(engine) as session:
            rows = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
            session.expunge_all()
    finally:
        engine.dispose()
    return [row for row in rows if row.linkedid == linkedid or linkedid in row.payload]


@pytest.mark.parametrize("where", ["from", "request-uri"])
def test_injected_number_cannot_forge_the_audit_and_the_caller_reaches_an_operator(
    box: Sandbox, where: str
) -> None:
    caller, called = (INJECTION, "112") if where == "from" else ("081234567890", INJECTION)
    cel_before = cel_linkedids(box)
    counter = "sanitised" if where == "from" else "normalised"
    edge_before = box.edge.rpc.statistics().counter(counter) if box.edge else 0
    outcome: list[SippResult] = []
    extra = ("-key", "caller", caller, "-key", "called", called, "-d", "2000")
    placing = threading.Thread(target=lambda: outcome.append(run_scenario(
        "uac_112_injected.xml", box.sip_target, workdir=box.workdir, extra=extra,
        timeout_s=60)))  # fmt: skip
    with Phone("127.0.0.1", user=OPERATOR) as phone:
        phone.register(f"sip:{box.phone_target}", OPERATOR, f"secret-{OPERATOR}", timeout=5)
        phone.auto_answer(0.2)
        cli(box, "operators", "login", OPERATOR)
        try:
            placing.start()
            # The operator's phone rings (the INVITE is well-formed) and answers.
            incoming = phone.wait_incoming(30)
            incoming.wait_confirmed(5)
            screen = incoming.from_display_name or ""
            assert "\r" not in screen and "\n" not in screen and "Event" not in screen, screen
            placing.join(60)
        finally:
            cli(box, "operators", "logout", OPERATOR)
    assert outcome and outcome[0].ok, outcome and outcome[0].output + outcome[0].errors
    # Asterisk's own record of the call: its CEL.
    real = cel_linkedids(box) - cel_before
    assert len(real) == 1, real
    (linkedid,) = real
    (call,) = wait_ended(box, real)
    assert call.answered_at is not None and call.answering_operator, call.outcome
    events = events_of(box, linkedid)
    assert {"Newchannel", "QueueCallerJoin", "AgentConnect", "Hangup"} <= {e.type for e in events}
    for event in events:
        assert event.linkedid == linkedid, (event.type, event.linkedid)
        assert event.uniqueid and event.uniqueid != "fake-1", (event.type, event.uniqueid)
        assert json.loads(event.payload).get("UserEvent") != "Forged"
    first = json.loads(events[0].payload)
    raw_field = "CallerIDNum" if where == "from" else "Exten"
    if box.edge is not None:
        # The edge replaced the text (From) or made the number 112 (Request-URI): nothing
        # injected reached Asterisk, so there is nothing for the audit to flag.
        assert box.edge.rpc.statistics().counter(counter) > edge_before
        assert not call.injected and "TelephonyInjected" not in first
        assert "\r" not in first[raw_field] and "fake-1" not in first[raw_field]
    else:
        assert call.injected, "the call's audit does not say it carried injected text"
        assert first["TelephonyInjected"] == raw_field
        assert "fake-1" in first[raw_field]  # the caller's text kept as evidence
    assert not [e for e in events_of(box, "fake-1") if e.linkedid == "fake-1"]
    quarantined = read_quarantine(resolve_path(box.config.audit.quarantine_path))
    assert not [q for q in quarantined if q.linkedid == "fake-1"]
