"""Operators and queues on a real Asterisk: pjsua2 operators register and answer for real.

Three operators in two regencies: a1 and a2 in Kota Malang (35.73), b1 in Kota Surabaya
(35.78). Callers are placed by their cell (P-Access-Network-Info, config/routing.example.csv)
and press 1 to leave the IVR at once. Overflow is shortened to 3 s.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from telephony.audit import AuditEvent, Call
from telephony.control import Watcher, watching
from telephony.location import import_routes, load_regions
from telephony.pbx.provision import AsteriskInstall
from telephony.phone import CallHandle, IncomingCall, Phone
from telephony.store import open_database
from tests.harness.net import free_port, wait_udp_bound
from tests.harness.sandbox import Sandbox, start_sandbox, wait_contact
from tests.harness.service import ServeProcess, run_cli
from tests.harness.sipp import SippResult, run_scenario

pytestmark = pytest.mark.asterisk

CONFIG = Path(__file__).resolve().parents[2] / "config"
OVERFLOW_S = 3
OPERATORS = {"a1": "35.73", "a2": "35.73", "b1": "35.78"}
# utran-cell-id-3gpp = MCC MNC TAC(4 hex) ECI(7 hex); each routes by config/routing.example.csv.
CELL = {
    "35.73": "510100A010000001",  # TAC 2561: the whole area routes to Kota Malang
    "35.78": "5101012340012345",  # TAC 4660, ECI 74565: Kota Surabaya
    "35.07": "51010220100ABCDE",  # TAC 8705, ECI 703710: Kab. Malang, which has no operator
}
_numbers = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def centre(
    asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Sandbox, ServeProcess, int]]:
    root = tmp_path_factory.mktemp("centre")
    roster = root / "operators.toml"
    roster.write_text("".join(
        f'[[operator]]\nid = "{op}"\nregency = "{code}"\npassword = "secret-{op}"\n\n'
        for op, code in OPERATORS.items()
    ))
    uas_port = free_port(socket.SOCK_DGRAM, "127.0.0.2")
    box = start_sandbox(
        asterisk_install, root,
        f"operators.file={roster}", f"operators.overflow_s={OVERFLOW_S}",
        "operators.wrapup_s=1", f"callbacks.trunk_contact=sip:127.0.0.2:{uas_port}",
    )
    engine = open_database(box.config)
    import_routes(engine, CONFIG / "routing.example.csv",
                  regions=load_regions(CONFIG / "regions.toml"))
    engine.dispose()
    service = ServeProcess(box.config, root / "serve.log")
    try:
        service.wait_ready()
        yield box, service, uas_port
    finally:
        service.stop()
        box.stop()


@pytest.fixture
def box(centre: tuple[Sandbox, ServeProcess, int]) -> Iterator[Sandbox]:
    sandbox = centre[0]
    for op in OPERATORS:
        cli(sandbox, "operators", "logout", op)
    yield sandbox
    left = sandbox.wait_no_channels()
    assert left == 0, f"{left} channel(s) leaked:\n{sandbox.asterisk.cli('core show channels')}"


@pytest.fixture
def ami(box: Sandbox) -> Iterator[Watcher]:
    with watching(box.config) as watcher:
        yield watcher


def cli(box: Sandbox, *args: str) -> str:
    done = run_cli(box.config, *args)
    assert done.returncode == 0, f"telephony {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def operator(box: Sandbox, op: str) -> Phone:
    phone = Phone("127.0.0.1", user=op)
    phone.register(f"sip:{box.phone_target}", op, f"secret-{op}", timeout=5)
    phone.auto_answer(0.2)
    wait_contact(box, op)
    return phone


def number() -> str:
    return f"+628129{next(_numbers):06d}"


def caller_call(box: Sandbox, phone: Phone, caller: str, regency: str) -> CallHandle:
    """A caller in `regency` who presses 1 (police) as soon as the welcome starts."""
    call = phone.call(f"sip:112@{box.sip_target}", headers={
        "P-Asserted-Identity": f"<sip:{caller}@mno.example;user=phone>",
        "P-Access-Network-Info":
            f"3GPP-E-UTRAN-FDD; utran-cell-id-3gpp={CELL[regency]}; network-provided",
    })
    call.wait_confirmed(10)
    call.wait_media(5)
    call.send_dtmf("1")
    return call


def screen(incoming: IncomingCall) -> str:
    return incoming.from_display_name or ""


def test_each_call_rings_a_free_operator_of_its_regency_never_busy_or_paused(
    box: Sandbox, ami: Watcher, tmp_path: Path
) -> None:
    # Five callers at once from SIPp (pjsua2 allows only four calls per process, and the
    # operators need two of them).
    malang = [number() for _ in range(3)]
    surabaya = [number() for _ in range(2)]
    callers = tmp_path / "callers.csv"
    callers.write_text("SEQUENTIAL\n" + "".join(
        f"{n};{CELL[code]}\n" for code, group in (("35.73", malang), ("35.78", surabaya))
        for n in group
    ))
    hold_ms = (2 * OVERFLOW_S + 6) * 1000
    outcome: dict[str, SippResult] = {}
    placing = threading.Thread(target=lambda: outcome.setdefault("result", run_scenario(
        "uac_112_dtmf.xml", box.sip_target, calls=5, rate=10, timeout_s=60,
        workdir=box.workdir, extra=("-inf", str(callers), "-d", str(hold_ms)))))
    with operator(box, "a1") as a1, operator(box, "a2") as a2, operator(box, "b1") as b1:
        for op in OPERATORS:
            cli(box, "operators", "login", op)
        cli(box, "operators", "pause", "a2", "--reason", "training")
        placing.start()
        first_a1 = a1.wait_incoming(15)
        first_b1 = b1.wait_incoming(15)
        assert screen(first_a1).startswith("POL 35.73 +628129")
        assert screen(first_a1).split()[-1] in malang
        assert screen(first_b1).startswith("POL 35.78 +628129")
        assert screen(first_b1).split()[-1] in surabaya
        first_a1.wait_confirmed(5)
        first_b1.wait_confirmed(5)
        # The others wait through both overflow hops: nobody busy or paused is rung.
        placing.join(hold_ms / 1000 + 30)
        assert len(a1.incoming) == 1 and len(b1.incoming) == 1
        assert a2.incoming == []
        listing = json.loads(cli(box, "operators", "list", "--json"))
    a2_row = next(r for r in listing if r["id"] == "a2")
    assert a2_row["state"] == "paused" and a2_row["pause_reason"] == "training"
    assert len(a2_row["asterisk_queues"]) == len(a2_row["queues"])
    result = outcome["result"]
    assert result.ok, result.output + result.errors
    joins = [s.frame for s in ami.seen if s.frame.event == "QueueCallerJoin"]
    assert {f.get("Queue") for f in joins} >= {"reg-3573", "reg-3578", "prov-35"}


def test_no_operator_in_the_regency_overflows_to_a_neighbour_and_the_hop_is_audited(
    box: Sandbox, ami: Watcher
) -> None:
    caller = number()
    with operator(box, "a1") as a1, Phone("127.0.0.2") as callers:
        cli(box, "operators", "login", "a1")
        call = caller_call(box, callers, caller, "35.07")
        joined = ami.wait_for("QueueCallerJoin", lambda f: f.get("Queue") == "reg-3507")
        incoming = a1.wait_incoming(3 * OVERFLOW_S + 5)
        waited = incoming.invite_at - joined.at if incoming.invite_at else 0.0
        assert OVERFLOW_S - 0.5 <= waited <= 2 * OVERFLOW_S, f"rang after {waited:.2f}s"
        assert screen(incoming).startswith("POL 35.07 ")
        incoming.wait_confirmed(5)
        linkedid = joined.frame.get("Linkedid") or ""
        hop = ami.wait_for("UserEvent", lambda f: f.get("UserEvent") == "QueueOverflow"
                           and f.get("Linkedid") == linkedid)
        assert (hop.frame.get("From"), hop.frame.get("To")) == ("reg-3507", "ovf-3507")
        time.sleep(1.5)  # the conversation, recorded: a duration, not a wait
        call.hangup()
        call.wait_disconnected(10)
    engine = open_database(box.config)
    deadline = time.monotonic() + 10
    try:
        while True:
            with Session(engine) as session:
                row = session.get(Call, linkedid)
                hops = session.scalars(select(AuditEvent).where(
                    AuditEvent.linkedid == linkedid, AuditEvent.type == "UserEvent",
                    AuditEvent.payload.contains("QueueOverflow"))).all()
                if row is not None and row.ended_at is not None and hops:
                    break
            assert time.monotonic() < deadline, "the call's end and hop never reached the audit"
            time.sleep(0.2)  # the store announces no commit to a reader: poll it
    finally:
        engine.dispose()
    assert row.outcome is not None and row.outcome.value == "overflowed-then-answered"
    assert row.answering_operator and "a1" in row.answering_operator
    assert_recording_sealed(box, linkedid)


def assert_recording_sealed(box: Sandbox, linkedid: str) -> None:
    """The answered call was recorded, and the audit chain holds the file's digest."""
    engine = open_database(box.config)
    deadline = time.monotonic() + 15
    try:
        while True:
            with Session(engine) as session:
                sealed = session.scalars(select(AuditEvent).where(
                    AuditEvent.linkedid == linkedid, AuditEvent.type == "RecordingSealed")).all()
            if sealed or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the store announces no commit to a reader: poll it
    finally:
        engine.dispose()
    assert len(sealed) == 1, "no RecordingSealed event in the audit"
    fields = json.loads(sealed[0].payload)
    assert "Error" not in fields, fields
    recording = Path(fields["File"])
    assert recording.is_relative_to(box.config.recording.directory)
    assert hashlib.sha256(recording.read_bytes()).hexdigest() == fields["SHA256"]
    assert float(fields["Duration"]) > 0.5


def test_with_nobody_logged_in_the_caller_waits_until_someone_logs_in(
    box: Sandbox, ami: Watcher
) -> None:
    with operator(box, "b1") as b1, Phone("127.0.0.2") as callers:
        call = caller_call(box, callers, number(), "35.78")
        ami.wait_for("QueueCallerJoin", lambda f: f.get("Queue") == "prov-35",
                     timeout=3 * OVERFLOW_S + 5)
        # In the final queue, which has no timeout: still there, not dropped. A negative has
        # no signal; this is the window it is checked over.
        time.sleep(2)
        assert call.state == "CONFIRMED"
        assert b1.incoming == []
        cli(box, "operators", "login", "b1")
        incoming = b1.wait_incoming(10)
        incoming.wait_confirmed(5)
        call.hangup()
        call.wait_disconnected(10)


def test_abandoned_caller_yields_one_callback_that_rings_operator_then_caller(
    centre: tuple[Sandbox, ServeProcess, int], box: Sandbox, ami: Watcher
) -> None:
    caller = number()
    with Phone("127.0.0.2") as callers:
        for _attempt in range(2):
            call = caller_call(box, callers, caller, "35.78")
            ami.wait_for("QueueCallerJoin", lambda f: f.get("CallerIDNum") == caller[1:]
                         or f.get("CallerIDNum") == caller)
            call.hangup()
            call.wait_disconnected(10)
            ami.clear()
    assert box.wait_no_channels() == 0
    items = [i for i in json.loads(cli(box, "callbacks", "list", "--json"))
             if i["caller"] == caller]
    assert len(items) == 1, items
    item = items[0]
    assert item["attempts"] == 2 and item["regency_code"] == "35.78"
    assert item["emergency_type"] == "police" and item["waited_s"] > 0

    uas_port = centre[2]
    citizen: dict[str, SippResult] = {}
    answering = threading.Thread(target=lambda: citizen.setdefault("result", run_scenario(
        "uas_citizen.xml", box.sip_target, source="127.0.0.2", calls=1, timeout_s=40,
        port=uas_port, workdir=box.workdir)))
    with operator(box, "b1") as b1:
        answering.start()
        wait_udp_bound("127.0.0.2", uas_port)
        cli(box, "callbacks", "take", str(item["id"]), "--operator", "b1")
        incoming = b1.wait_incoming(10)
        assert screen(incoming) == f"CB {caller}"
        incoming.wait_confirmed(5)
        bridged = ami.wait_for("BridgeEnter", lambda f: "trunk-mno" in (f.get("Channel") or ""))
        assert bridged is not None
        time.sleep(0.5)  # a short conversation: a duration, not a wait
        incoming.hangup()
        incoming.wait_disconnected(5)
    answering.join(45)
    assert citizen["result"].ok, citizen["result"].output + citizen["result"].errors
    cli(box, "callbacks", "done", str(item["id"]))


def test_restarting_asterisk_restores_queue_membership_from_the_database(
    centre: tuple[Sandbox, ServeProcess, int], box: Sandbox
) -> None:
    service = centre[1]
    cli(box, "operators", "login", "a1")
    cli(box, "operators", "pause", "a1", "--reason", "break")
    assert "PJSIP/a1" in box.asterisk.cli("queue show reg-3573")
    restored = len(service.events("presence.restored"))
    box.asterisk.stop()
    box.asterisk.start(box.config.asterisk.boot_timeout_s)
    service.wait_for("presence.restored", 30, after=restored)
    shown = box.asterisk.cli("queue show reg-3573")
    assert "PJSIP/a1" in shown, shown
    assert "paused:break" in shown.lower() or "(paused" in shown.lower(), shown


def test_adding_and_removing_an_operator_reloads_pjsip_without_dropping_a_call(
    box: Sandbox,
) -> None:
    with operator(box, "b1") as b1, Phone("127.0.0.2") as callers:
        cli(box, "operators", "login", "b1")
        call = caller_call(box, callers, number(), "35.78")
        answered = b1.wait_incoming(10)
        answered.wait_confirmed(5)
        done = run_cli(box.config, "operators", "add", "c1", "--regency", "35.78",
                       "--password-stdin", stdin="secret-c1-long\n")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "sandbox: PJSIP reloaded" in done.stdout
        roster = Path(box.config.operators.file).read_text()
        assert "secret-c1-long" not in roster and 'id = "c1"' in roster
        with Phone("127.0.0.1", user="c1") as c1:
            c1.register(f"sip:{box.phone_target}", "c1", "secret-c1-long", timeout=5)
            assert c1.registered
        cli(box, "operators", "remove", "c1")
        assert "Unable to find object c1" in box.asterisk.cli("pjsip show endpoint c1")
        # The reloads did not touch the call in progress.
        assert call.state == "CONFIRMED" and answered.state == "CONFIRMED"
        call.hangup()
        call.wait_disconnected(10)


def test_an_operator_dialling_the_handover_code_without_a_call_is_refused(
    box: Sandbox, ami: Watcher
) -> None:
    # Issue 12 (6d): the operator's own channel used to be queued as if it were a caller.
    with operator(box, "a1") as a1:
        call = a1.call(f"sip:*83578@{box.phone_target}")
        call.wait_disconnected(10)
        assert call.last_status_code == 403, call
        assert call.confirmed_at is None
        # Nor does the phone reach anything else, e.g. a number through the trunk.
        other = a1.call(f"sip:081234567890@{box.phone_target}")
        other.wait_disconnected(10)
        assert other.last_status_code == 404, other
    assert not [s for s in ami.seen if s.frame.event == "QueueCallerJoin"
                and (s.frame.get("Channel") or "").startswith("PJSIP/a1-")]
    assert not [s for s in ami.seen if s.frame.get("UserEvent") == "Handover"]


def test_operator_hands_a_call_over_to_another_regency_keeping_its_data(
    box: Sandbox, ami: Watcher
) -> None:
    caller = number()
    with operator(box, "a1") as a1, operator(box, "b1") as b1, Phone("127.0.0.2") as callers:
        cli(box, "operators", "login", "a1")
        cli(box, "operators", "login", "b1")
        call = caller_call(box, callers, caller, "35.73")
        first = a1.wait_incoming(10)
        first.wait_confirmed(5)
        # A transfer needs the two in one bridge: Queue's gosub (recording) runs first.
        ami.wait_for("BridgeEnter", lambda f: (f.get("Channel") or "").startswith("PJSIP/a1"))
        # Kota Malang's operator finds the emergency is in Surabaya: *8 + 3578.
        first.transfer(f"sip:*83578@{box.phone_target}")
        handed = b1.wait_incoming(10)
        # The screen still shows where the caller is (located in Kota Malang).
        assert screen(handed) == f"POL 35.73 {caller}"
        handed.wait_confirmed(5)
        hop = ami.wait_for("UserEvent", lambda f: f.get("UserEvent") == "Handover")
        assert (hop.frame.get("From"), hop.frame.get("To")) == ("reg-3573", "reg-3578")
        located = [f for f in ami.for_call(hop.frame.get("Linkedid") or "")
                   if f.get("UserEvent") == "CallQueued"]
        assert [f.get("EmergencyType") for f in located] == ["police", "police"]
        assert located[-1].get("Queue") == "reg-3578"
        call.hangup()
        call.wait_disconnected(10)
