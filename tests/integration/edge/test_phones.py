"""Operators' phones register to the edge, and Asterisk reaches them through it
(docs/edge.md, "Operators' phones").

One edge (Kamailio + Asterisk) with TLS for phones and operators.require_tls: TLS ends at
Kamailio, and Asterisk reaches each operator at sip:<id>@127.0.0.10 over loopback. tls1 is
a TLS + SRTP softphone, udp1 a plain UDP one; both of Kota Malang, so a trunk caller without
a cell waits in the province queue where both are members.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from telephony.ami import ActionFailed
from telephony.control import Watcher, ami_connection
from telephony.edge.phones import QUALIFY_REASONS
from telephony.edge.render import EdgeError
from telephony.pbx.provision import AsteriskInstall
from telephony.phone import Phone, RegistrationError, Security
from tests.harness.net import free_port
from tests.harness.perf.phones import Phones
from tests.harness.sandbox import wait_contact
from tests.harness.service import ServeProcess, run_cli
from tests.harness.sipp import SippResult, run_scenario
from tests.harness.tls import make_certificate
from tests.integration.edge.conftest import Edge, history, start_edge, stop_edge
from tests.integration.test_security import (
    UNAVAILABLE,
    force_available,
    getvar,
    is_member,
)

pytestmark = pytest.mark.asterisk

OPERATORS = ("tls1", "udp1")
# Asterisk qualifies through the edge every 5 s; the edge answers within 1.5 s.
UNAVAIL_WAIT_S = 15.0
# With telephony serve behind the edge, a phone that registers is qualified at once: well
# below Asterisk's periodic qualify (EDGE_QUALIFY_S, 5 s), the wait without it.
RINGABLE_BUDGET_S = 1.5
# A graceful stop with no call up: 0.3 s measured; 10 s when a qualify was left waiting.
STOP_BUDGET_S = 3.0
# Loopback, so that nothing leaves the host even if the edge sent there; nothing listens.
NOWHERE = "127.0.0.99:5999"


@dataclass
class Centre:
    edge: Edge
    cert: Path

    @property
    def tls_registrar(self) -> str:
        return f"sip:127.0.0.1:{self.edge.box.config.edge.phone_tls_port};transport=tls"

    @property
    def udp_registrar(self) -> str:
        return f"sip:127.0.0.1:{self.edge.box.config.edge.phone_port}"

    def tls_phone(self, user: str = "tls1") -> Phone:
        return Phone("127.0.0.1", user=user, security=Security(self.cert))


def start_centre(install: AsteriskInstall, root: Path, *overrides: str) -> Centre:
    """An edge with TLS for phones (a self-signed certificate made here) and our roster."""
    root.mkdir(parents=True, exist_ok=True)
    cert, key = make_certificate(root)
    roster = root / "operators.toml"
    roster.write_text("".join(
        f'[[operator]]\nid = "{op}"\nregency = "35.73"\npassword = "secret-{op}"\n\n'
        for op in OPERATORS
    ))
    edge = start_edge(
        install, root, f"operators.file={roster}", "operators.wrapup_s=1",
        f"asterisk.tls_port={free_port()}", f"asterisk.tls_cert_file={cert}",
        f"asterisk.tls_key_file={key}", *overrides,
    )
    return Centre(edge, cert)


@pytest.fixture(scope="module")
def centre(
    asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Centre]:
    found = start_centre(asterisk_install, tmp_path_factory.mktemp("phones"),
                         "operators.require_tls=true")
    try:
        yield found
    finally:
        stop_edge(found.edge)


@pytest.fixture
def phones(centre: Centre) -> Iterator[Centre]:
    for op in OPERATORS:
        cli(centre, "operators", "logout", op)
    yield centre
    box = centre.edge.box
    left = box.wait_no_channels()
    assert left == 0, f"{left} channel(s) leaked:\n{box.asterisk.cli('core show channels')}"


def cli(centre: Centre, *args: str) -> str:
    done = run_cli(centre.edge.box.config, *args)
    assert done.returncode == 0, f"telephony {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def call_in_background(centre: Centre, hold_ms: int) -> tuple[threading.Thread, list[SippResult]]:
    """One trunk caller (SIPp from 127.0.0.2) through the edge, who talks and hangs up."""
    box = centre.edge.box
    outcome: list[SippResult] = []
    extra = ("-key", "pai", "<sip:+6281299990001@mno.example;user=phone>", "-d", str(hold_ms))
    thread = threading.Thread(target=lambda: outcome.append(run_scenario(
        "uac_112_voice.xml", centre.edge.target, workdir=box.workdir, extra=extra,
        timeout_s=hold_ms / 1000 + 30)))
    thread.start()
    return thread, outcome


def registered_at_edge(centre: Centre, op: str) -> list[str]:
    """The contacts Kamailio's usrloc holds for `op` (empty if none)."""
    try:
        answer = centre.edge.kamailio.rpc.call("ul.lookup", "location", op)
    except EdgeError as exc:  # usrloc answers an unknown AOR with an RPC error
        if "not found" in str(exc).lower():
            return []
        raise
    return [str(c.get("Contact", {}).get("Address", c)) for c in answer.get("Contacts", [])]


def test_a_tls_operator_registers_at_the_edge_and_takes_a_queued_call_over_srtp(
    phones: Centre,
) -> None:
    box = phones.edge.box
    watcher = Watcher()
    conn = ami_connection(box.config, watcher.on_event)
    conn.start()
    try:
        assert conn.wait_connected(15)
        with phones.tls_phone() as tls1:
            started = time.monotonic()
            tls1.register(phones.tls_registrar, "tls1", "secret-tls1")
            registered = time.monotonic()
            tls1.auto_answer(0.2)
            contact = wait_contact(box, "tls1", "Avail")
            reachable = time.monotonic()
            print(f"\nREGISTER (with its 401) {1000 * (registered - started):.0f} ms; "
                  f"registered to Avail in Asterisk {reachable - registered:.1f} s")
            # Asterisk's contact is the edge; the phone's is in Kamailio, over TLS.
            assert "sip:tls1@127.0.0.10:" in contact, contact
            at_edge = registered_at_edge(phones, "tls1")
            assert len(at_edge) == 1 and "transport=tls" in at_edge[0].lower(), at_edge
            assert not any("REGISTER" in line for _, _, line in history(phones.edge))
            cli(phones, "operators", "login", "tls1")
            placing, outcome = call_in_background(phones, hold_ms=9000)
            incoming = tls1.wait_incoming(20)
            incoming.wait_confirmed(5)
            # The INVITE came from the edge over TLS, offering SRTP keys only inside it.
            assert (incoming.header("via") or "").startswith("SIP/2.0/TLS 127.0.0.1:"), \
                incoming.header("via")
            assert " RTP/SAVP " in incoming.invite and "a=crypto:" in incoming.invite
            connect = watcher.wait_for("AgentConnect", is_member("tls1"))
            leg = connect.frame.get("DestChannel") or ""
            assert getvar(conn, leg, "CHANNEL(rtp,secure)") == "1"
            deadline = time.monotonic() + 10
            stats = incoming.media_stats()
            while stats.rx_packets < 50 and time.monotonic() < deadline:
                time.sleep(0.1)  # RTP counters have no event: poll them
                stats = incoming.media_stats()
            assert stats.srtp and stats.rx_packets >= 50 and stats.tx_packets > 0, stats
            # The phone's own requests reach Asterisk through the edge too: a *8 handover
            # (REFER in the dialog) puts the caller into Kota Malang's queue, which rings
            # tls1 again once its wrap-up is over.
            watcher.wait_for("BridgeEnter", lambda f: (f.get("Channel") or "").startswith(
                "PJSIP/tls1"))
            incoming.transfer(f"sip:*83573@127.0.0.1:{box.config.edge.phone_tls_port}")
            hop = watcher.wait_for("UserEvent", lambda f: f.get("UserEvent") == "Handover")
            assert (hop.frame.get("From"), hop.frame.get("To")) == ("prov-35", "reg-3573")
            again = tls1.wait_incoming(10)
            again.wait_confirmed(5)
            placing.join(30)
            again.wait_disconnected(10)
            print(f"qualify through the edge to the phone: {wait_contact(box, 'tls1', 'Avail')}")
    finally:
        conn.stop()
    assert outcome and outcome[0].ok, (outcome[0].output + outcome[0].errors) if outcome else ""


def test_with_require_tls_a_udp_phone_cannot_register_and_is_never_rung(phones: Centre) -> None:
    box = phones.edge.box
    insecure = phones.edge.stats().counter("phone_insecure")
    watcher = Watcher()
    conn = ami_connection(box.config, watcher.on_event)
    conn.start()
    try:
        assert conn.wait_connected(15)
        with Phone("127.0.0.1", user="udp1") as udp1, phones.tls_phone() as tls1:
            with pytest.raises(RegistrationError) as refused:
                udp1.register(phones.udp_registrar, "udp1", "secret-udp1")
            assert refused.value.status_code == 403, refused.value
            udp1.auto_answer(0.2)
            tls1.register(phones.tls_registrar, "tls1", "secret-tls1")
            tls1.auto_answer(0.2)
            assert registered_at_edge(phones, "udp1") == []
            wait_contact(box, "udp1", "Unavail", UNAVAIL_WAIT_S)
            wait_contact(box, "tls1", "Avail")
            login = run_cli(box.config, "operators", "login", "udp1")
            assert login.returncode == 1 and "no phone registered over TLS" in login.stderr
            with pytest.raises(ActionFailed):
                conn.send_action("Originate", Channel="PJSIP/udp1", Application="Echo",
                                 Timeout="5000", timeout=15)
            # Even when put in the queues, udp1 is unavailable and never offered a caller.
            force_available(box, "udp1")
            status = conn.send_list_action("QueueStatus", Queue="prov-35").events
            member = next(e for e in status if e.event == "QueueMember" and is_member("udp1")(e))
            assert member.get("Status") == UNAVAILABLE
            cli(phones, "operators", "login", "tls1")
            placing, outcome = call_in_background(phones, hold_ms=3000)
            incoming = tls1.wait_incoming(20)
            incoming.wait_confirmed(5)
            placing.join(30)
            incoming.wait_disconnected(10)
            assert udp1.incoming == []
            rung = [s.frame for s in watcher.seen if s.frame.event in ("AgentCalled", "DialBegin")]
            assert not any(is_member("udp1")(f) for f in rung), rung
    finally:
        conn.stop()
    assert outcome and outcome[0].ok, (outcome[0].output + outcome[0].errors) if outcome else ""
    assert phones.edge.stats().counter("phone_insecure") > insecure


def test_a_wrong_password_or_a_phone_that_bypasses_the_edge_is_refused(phones: Centre) -> None:
    box = phones.edge.box
    failed = phones.edge.stats().counter("phone_auth_failed")
    with phones.tls_phone() as tls1:
        with pytest.raises(RegistrationError) as wrong:
            tls1.register(phones.tls_registrar, "tls1", "not-the-password")
        assert wrong.value.status_code == 403, wrong.value
    assert phones.edge.stats().counter("phone_auth_failed") == failed + 1
    assert registered_at_edge(phones, "tls1") == []
    # Asterisk itself takes no operator's REGISTER: only the edge may reach it for phones.
    with phones.tls_phone() as direct:
        target = f"sip:127.0.0.1:{box.config.asterisk.tls_port};transport=tls"
        with pytest.raises(RegistrationError) as bypass:
            direct.register(target, "tls1", "secret-tls1")
        assert bypass.value.status_code in (401, 403), bypass.value
    wait_contact(box, "tls1", "Unavail", UNAVAIL_WAIT_S)


def test_a_phones_own_call_is_authenticated_by_asterisk_and_cannot_pose_as_a_trunk(
    phones: Centre,
) -> None:
    box = phones.edge.box
    with phones.tls_phone() as tls1:
        tls1.register(phones.tls_registrar, "tls1", "secret-tls1")
        seen = len(history(phones.edge))
        # A trunk endpoint is identified by this header from the edge's address: a phone
        # that sends it must still be the operator, for whom 112 is no extension.
        call = tls1.call(f"sip:112@127.0.0.1:{box.config.edge.phone_tls_port};transport=tls",
                         {"X-Telephony-Trunk": "mno"})
        call.wait_disconnected(10)
        assert call.last_status_code == 404, call
    lines = [(peer, line) for _, peer, line in history(phones.edge)[seen:]]
    invites = [peer for peer, line in lines if line.startswith("INVITE sip:112@")]
    # Challenged by Asterisk (401) through the edge, then answered with credentials.
    assert len(invites) == 2 and all(p.startswith("127.0.0.10:") for p in invites), lines
    assert any(line.startswith("SIP/2.0 401") for _, line in lines), lines


def test_with_serve_behind_the_edge_a_phone_that_registers_is_ringable_at_once(
    phones: Centre, tmp_path: Path
) -> None:
    """The edge tells serve of each registration, and serve has Asterisk qualify the
    operator at once (telephony.edge.registered). The second registration follows right
    after a periodic qualify found the phone gone (Unavail), so the next periodic one is
    5 s away: without the edge's word, the phone would not be Avail within the budget."""
    box = phones.edge.box
    serve = ServeProcess(box.config, tmp_path / "serve.log")
    try:
        serve.wait_ready()
        phones.edge.forget_validator_failure()
        took: list[float] = []
        for attempt in range(2):
            wait_contact(box, "tls1", "Unavail", UNAVAIL_WAIT_S)
            # One word per registration; the un-registration (closing the phone) asks nothing.
            assert len(serve.events("edge.phone_registered")) == attempt
            with phones.tls_phone() as tls1:
                tls1.register(phones.tls_registrar, "tls1", "secret-tls1")
                registered = time.monotonic()
                wait_contact(box, "tls1", "Avail", RINGABLE_BUDGET_S)
                took.append(time.monotonic() - registered)
            assert serve.wait_for("edge.phone_registered", 5, after=attempt)["op"] == "tls1"
        print(f"\nregistered to Avail in Asterisk: {', '.join(f'{t:.2f} s' for t in took)} "
              "(polled every 0.1 s)")
        assert serve.events("edge.qualify_failed") == []
    finally:
        serve.stop()


def test_before_require_tls_a_udp_phone_behind_nat_is_rung_without_srtp_keys(
    asterisk_install: AsteriskInstall, tmp_path: Path
) -> None:
    """TLS on but not required (the migration state): Asterisk offers SDES to every phone,
    and the edge takes the keys out of an offer that would leave it over UDP. The phone
    writes a Contact where nothing listens (NAT): the edge reaches it where it really is."""
    centre = start_centre(asterisk_install, tmp_path / "open")
    box = centre.edge.box
    try:
        with Phone("127.0.0.1", user="udp1") as udp1:
            udp1.register(centre.udp_registrar, "udp1", "secret-udp1",
                          contact=f"<sip:udp1@{NOWHERE}>")
            wait_contact(box, "udp1", "Avail")
            cli(centre, "operators", "login", "udp1")
            # A caller who hangs up while the phone rings: Asterisk's CANCEL reaches it.
            placing, outcome = call_in_background(centre, hold_ms=1500)
            rung = udp1.wait_incoming(20)
            placing.join(30)
            rung.wait_disconnected(10)
            assert rung.answered_at is None and outcome and outcome[0].ok, rung
            udp1.auto_answer(0.2)
            placing, outcome = call_in_background(centre, hold_ms=2000)
            incoming = udp1.wait_incoming(20)
            incoming.wait_confirmed(5)
            assert (incoming.header("via") or "").startswith("SIP/2.0/UDP 127.0.0.1:")
            assert "a=crypto:" not in incoming.invite and " RTP/AVP " in incoming.invite
            assert incoming.request_uri == f"sip:udp1@{NOWHERE}", incoming.request_uri
            placing.join(30)
            # The caller's hang-up reaches the phone too. Asterisk's requests in the dialog
            # carry the alias the edge added to the phone's Contact (where it really is).
            incoming.wait_disconnected(10)
            byes = [line for _, _, line in history(centre.edge) if line.startswith("BYE sip:udp1@")]
            assert byes and ";alias=127.0.0.1~" in byes[0], byes
        assert outcome and outcome[0].ok, outcome[0].output + outcome[0].errors
        assert box.wait_no_channels() == 0
    finally:
        stop_edge(centre.edge)


def test_a_registered_phone_that_falls_silent_is_unavailable_and_asterisk_stops_at_once(
    asterisk_install: AsteriskInstall, tmp_path: Path
) -> None:
    """The edge answers each qualify itself: 200 while the phone answers, 408 once it is
    silent; nothing waits for Asterisk's timer F, so a graceful stop takes no 10 s."""
    centre = start_centre(asterisk_install, tmp_path / "silent")
    box = centre.edge.box
    try:
        phone = Phones(centre.udp_registrar.removeprefix("sip:"), [("udp1", "secret-udp1")],
                       tmp_path / "sipp", answer_ms=200, limit_s=120).start()
        try:
            wait_contact(box, "udp1", "Avail")
            assert registered_at_edge(centre, "udp1")
        finally:
            phone.stop()
        # Still registered at the edge, but nothing answers there any more.
        wait_contact(box, "udp1", "Unavail", UNAVAIL_WAIT_S)
        assert registered_at_edge(centre, "udp1")
        # Under load Asterisk's own 2 s timer may mark it first; the edge's 408 follows.
        silent = f"SIP/2.0 408 {QUALIFY_REASONS['silent']}"
        deadline = time.monotonic() + 5
        while silent not in box.asterisk.cli("pjsip show history"):
            assert time.monotonic() < deadline, "no 408 from the edge"
            time.sleep(0.1)  # the CLI has no event for a message received: poll
        started = time.monotonic()
        box.asterisk.stop()
        took = time.monotonic() - started
        print(f"\nAsterisk behind the edge stopped in {took:.2f} s")
        assert took < STOP_BUDGET_S, f"Asterisk took {took:.1f} s to stop"
    finally:
        stop_edge(centre.edge)
