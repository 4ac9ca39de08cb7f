"""Operators' phones over TLS with SRTP, and AMI over TLS, on a real Asterisk.

One sandbox with a SIP TLS transport, AMI over TLS and operators.require_tls, using a
self-signed certificate made here with openssl, and `telephony serve`. The phones register
at Asterisk itself (`edge.registrar = false`; direct mode renders the operators alike, see
tests/unit/test_edge_phones.py): the same rules through the edge's registrar, where TLS ends
at Kamailio, are tested in tests/integration/edge/test_phones.py. Two operators of
Kota Malang: tls1 on a TLS + SRTP softphone, udp1 on a plain UDP one. Callers are SIPp on
the trunk address; without a cell they are queued in the province queue, where both are.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from telephony.ami import ActionFailed, AMIConnection, Frame
from telephony.ami.stream import client_context, open_stream
from telephony.config import resolve_path
from telephony.control import Watcher, ami_connection, ami_session
from telephony.location import load_regions
from telephony.operators import presence
from telephony.operators.roster import load_roster
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.render import queues
from telephony.phone import Phone, Security
from telephony.store import open_database
from tests.harness.net import free_port
from tests.harness.sandbox import Sandbox, start_sandbox, wait_contact
from tests.harness.service import ServeProcess, run_cli
from tests.harness.sipp import SippResult, run_scenario
from tests.harness.tls import make_certificate

pytestmark = pytest.mark.asterisk

OPERATORS = ("tls1", "udp1")
# Queue member status (app_queue, AST_DEVICE_UNAVAILABLE): Asterisk will not ring it.
UNAVAILABLE = "5"


@dataclass
class Centre:
    box: Sandbox
    service: ServeProcess
    cert: Path

    @property
    def tls_registrar(self) -> str:
        return f"sip:127.0.0.1:{self.box.config.asterisk.tls_port};transport=tls"


@pytest.fixture(scope="module")
def centre(
    asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Centre]:
    root = tmp_path_factory.mktemp("secure")
    cert, key = make_certificate(root)
    roster = root / "operators.toml"
    roster.write_text("".join(
        f'[[operator]]\nid = "{op}"\nregency = "35.73"\npassword = "secret-{op}"\n\n'
        for op in OPERATORS
    ))
    box = start_sandbox(
        asterisk_install, root, f"operators.file={roster}", "operators.wrapup_s=1",
        f"asterisk.tls_port={free_port()}", f"asterisk.ami_tls_port={free_port()}",
        f"asterisk.tls_cert_file={cert}", f"asterisk.tls_key_file={key}",
        f"asterisk.tls_ca_file={cert}", "operators.require_tls=true", "edge.registrar=false",
    )
    service = ServeProcess(box.config, root / "serve.log")
    try:
        service.wait_ready()
        yield Centre(box, service, cert)
    finally:
        service.stop()
        box.stop()


@pytest.fixture
def secure(centre: Centre) -> Iterator[Centre]:
    for op in OPERATORS:
        cli(centre.box, "operators", "logout", op)
    yield centre
    left = centre.box.wait_no_channels()
    assert left == 0, f"{left} channel(s) leaked:\n{centre.box.asterisk.cli('core show channels')}"


@contextmanager
def ami(centre: Centre) -> Iterator[tuple[AMIConnection, Watcher]]:
    """A session of our own AMI client, over TLS as configured, that also records events."""
    watcher = Watcher()
    conn = ami_connection(centre.box.config, watcher.on_event)
    conn.start()
    try:
        assert conn.wait_connected(15), "the test could not log in to AMI over TLS"
        yield conn, watcher
    finally:
        conn.stop()


def cli(box: Sandbox, *args: str) -> str:
    done = run_cli(box.config, *args)
    assert done.returncode == 0, f"telephony {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def call_in_background(centre: Centre, hold_ms: int) -> tuple[threading.Thread, list[SippResult]]:
    """One trunk caller (SIPp from 127.0.0.2) who presses 1, talks, and hangs up."""
    box = centre.box
    outcome: list[SippResult] = []
    extra = ("-key", "pai", "<sip:+6281299990001@mno.example;user=phone>", "-d", str(hold_ms))
    thread = threading.Thread(target=lambda: outcome.append(run_scenario(
        "uac_112_voice.xml", box.sip_target, workdir=box.workdir, extra=extra,
        timeout_s=hold_ms / 1000 + 30)))
    thread.start()
    return thread, outcome


def getvar(conn: AMIConnection, channel: str, variable: str) -> str:
    return conn.send_action("Getvar", Channel=channel, Variable=variable).get("Value") or ""


def is_member(op: str) -> Callable[[Frame], bool]:
    """Whether a queue event is about operator `op` (its member, or a channel to it)."""
    keys = ("Interface", "Location", "DestChannel")
    return lambda frame: any(f"PJSIP/{op}" in (frame.get(key) or "") for key in keys)


def test_service_and_tools_reach_ami_over_tls_and_receive_fully_booted(secure: Centre) -> None:
    config = secure.box.config
    tls_port = config.asterisk.ami_tls_port
    connected = secure.service.events("ami.connected")
    assert connected and all(e["tls"] and e["address"][1] == tls_port for e in connected)
    with ami(secure) as (_conn, events):
        booted = events.wait_for("FullyBooted", timeout=10)
    assert booted.frame.get("Status") == "Fully Booted"
    # The certificate really is verified: without our CA, the handshake is refused.
    with pytest.raises(ssl.SSLCertVerificationError):
        open_stream((config.asterisk.ami_bind, tls_port), 5.0, client_context())
    settings = secure.box.asterisk.cli("manager show settings")
    assert f"127.0.0.1:{tls_port}" in settings
    assert f"127.0.0.1:{config.asterisk.ami_port}" in settings


def test_operator_on_tls_is_rung_over_tls_and_talks_srtp(secure: Centre) -> None:
    box = secure.box
    with Phone("127.0.0.1", user="tls1", security=Security(secure.cert)) as tls1, \
            ami(secure) as (conn, events):
        tls1.register(secure.tls_registrar, "tls1", "secret-tls1")
        tls1.auto_answer(0.2)
        contact = wait_contact(box, "tls1", "Avail")
        assert ";transport=TLS" in contact, contact
        cli(box, "operators", "login", "tls1")
        placing, outcome = call_in_background(secure, hold_ms=6000)
        incoming = tls1.wait_incoming(20)
        incoming.wait_confirmed(5)
        # Signalling: the INVITE reached the phone over TLS, offering SRTP keys (SDES).
        assert (incoming.header("via") or "").startswith("SIP/2.0/TLS"), incoming.header("via")
        assert " RTP/SAVP " in incoming.invite and "a=crypto:" in incoming.invite
        connect = events.wait_for("AgentConnect", is_member("tls1"))
        leg = connect.frame.get("DestChannel") or ""
        assert leg.startswith("PJSIP/tls1-"), leg
        # Asterisk's own view of the operator's leg.
        assert getvar(conn, leg, "CHANNEL(pjsip,secure)") == "1"
        assert getvar(conn, leg, "CHANNEL(rtp,secure)") == "1"
        # Audio both ways: the phone, which accepts nothing but SRTP, hears the caller.
        deadline = time.monotonic() + 10
        stats = incoming.media_stats()
        while stats.rx_packets < 50 and time.monotonic() < deadline:
            time.sleep(0.1)  # RTP counters have no event: poll them
            stats = incoming.media_stats()
        assert stats.srtp and stats.rx_packets >= 50 and stats.tx_packets > 0, stats
        assert int(getvar(conn, leg, "CHANNEL(rtcp,rxcount)") or 0) > 0
        placing.join(30)
        incoming.wait_disconnected(10)
    assert outcome and outcome[0].ok, (outcome[0].output + outcome[0].errors) if outcome else ""


def test_with_require_tls_a_phone_on_udp_registers_but_is_never_rung(secure: Centre) -> None:
    box = secure.box
    with Phone("127.0.0.1", user="udp1") as udp1, \
            Phone("127.0.0.1", user="tls1", security=Security(secure.cert)) as tls1, \
            ami(secure) as (conn, events):
        # Asterisk cannot refuse a REGISTER for its transport ...
        udp1.register(f"sip:{box.phone_target}", "udp1", "secret-udp1")
        udp1.auto_answer(0.2)
        tls1.register(secure.tls_registrar, "tls1", "secret-tls1")
        tls1.auto_answer(0.2)
        # ... but it reaches operators only through the TLS transport: the contact is dead.
        wait_contact(box, "udp1", "Unavail")
        refused = run_cli(box.config, "operators", "login", "udp1")
        assert refused.returncode == 1 and "no phone registered over TLS" in refused.stderr
        with pytest.raises(ActionFailed):
            conn.send_action("Originate", Channel="PJSIP/udp1", Application="Echo",
                             Timeout="5000", timeout=15)
        # Even in the queues (as a restore from an older database would put it), udp1 is
        # unavailable to Asterisk, and a waiting caller is never offered to it.
        force_available(box, "udp1")
        status = conn.send_list_action("QueueStatus", Queue="prov-35").events
        member = next(e for e in status if e.event == "QueueMember" and is_member("udp1")(e))
        assert member.get("Status") == UNAVAILABLE
        placing, outcome = call_in_background(secure, hold_ms=8000)
        events.wait_for("QueueCallerJoin", lambda f: f.get("Queue") == "prov-35", timeout=20)
        time.sleep(2.5)  # a negative, so a window: more than two of the queue's 1 s retries
        assert udp1.incoming == []
        cli(box, "operators", "login", "tls1")
        incoming = tls1.wait_incoming(10)
        incoming.wait_confirmed(5)
        events.wait_for("AgentConnect", is_member("tls1"))
        placing.join(30)
        incoming.wait_disconnected(10)
        assert udp1.incoming == []
        rung = [s.frame for s in events.seen if s.frame.event in ("AgentCalled", "DialBegin")]
        assert not any(is_member("udp1")(f) for f in rung), rung
    assert outcome and outcome[0].ok, (outcome[0].output + outcome[0].errors) if outcome else ""


def force_available(box: Sandbox, op: str) -> None:
    """Mark `op` available in the database and restore, as `telephony serve` does on every
    AMI connection; this bypasses the login check on purpose."""
    config = box.config
    engine = open_database(config)
    try:
        presence.set_state(engine, op, presence.State.AVAILABLE)
        regions = load_regions(resolve_path(config.location.regions_file))
        roster = load_roster(resolve_path(config.operators.file), regions)
        with ami_session(config) as conn:
            presence.restore(conn, roster, presence.states(engine), regions, queues(config))
    finally:
        engine.dispose()

