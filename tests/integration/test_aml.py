"""Handset location (AML) end to end: real HTTPS POSTs (a test CA; a client certificate and
HTTP Basic from the sender's network) against `telephony console`'s receiver while SIPp
callers are in a real Asterisk; the call's record, the audit chain and the operator's card
in Chromium show the fix. A fix sent before the call is matched when the call comes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from playwright.sync_api import Browser

from telephony import config as config_mod
from telephony.ami import AMIConnection
from telephony.aml.senders import add_sender
from telephony.audit import AuditEvent
from telephony.control import ami_session
from telephony.pbx.provision import AsteriskInstall
from telephony.phone import Phone
from tests.harness.console import (
    ConsoleProcess,
    in_background,
    log_in,
    medical_call,
    number,
    running_centre,
    shot,
)
from tests.harness.net import free_port
from tests.harness.sandbox import Sandbox, wait_contact
from tests.harness.service import run_cli
from tests.harness.sipp import run_scenario
from tests.harness.tls import make_client_ca

pytestmark = pytest.mark.asterisk
SECRET = "telkomsel-aml-shared-secret"
SURABAYA_FIX = (-7.2650, 112.7500)  # a few hundred metres from the seat: still Kota Surabaya
MALANG_CELL = "51010220100ABCDE"  # TAC 8705, ECI 703710: Kab. Malang (routing.example.csv)
BATU = (-7.8705, 112.5262)  # Kota Batu, beside its seat and 11 km from Kab. Malang's nearest


@pytest.fixture(scope="module")
def centre(asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[Sandbox, ConsoleProcess, str, tuple[Path, Path, Path]]]:
    root = tmp_path_factory.mktemp("aml")
    senders = root / "aml.toml"
    client = make_client_ca(root, "els.test")
    add_sender(senders, "google", ["127.0.0.0/8"], certificate_name="els.test")
    only_senders = config_mod.load(None, env={}, overrides=[f"aml.senders_file={senders}"])
    added = run_cli(only_senders, "aml", "senders", "add", "telkomsel", "--network",
                    "127.0.0.0/8", "--secret-stdin", stdin=SECRET + "\n")
    assert added.returncode == 0, added.stderr
    listed = run_cli(only_senders, "aml", "senders", "list", "--json")
    assert {s["name"] for s in json.loads(listed.stdout)} == {"google", "telkomsel"}
    port = free_port()
    # Long enough that callers stay in their regency's queue for the routing test.
    with running_centre(asterisk_install, root, f"aml.port={port}", "operators.overflow_s=90",
                        f"aml.senders_file={senders}", f"aml.client_ca_file={client[0]}") as (
            box, _service, console):
        yield box, console, f"https://127.0.0.1:{port}/aml/v1", client


def form(caller: str, lat: float, lon: float, accuracy: float) -> str:
    now_ms = int(time.time() * 1000)
    return urlencode({"v": "1", "emergency_number": "112", "source": "call", "time": now_ms,
                      "location_latitude": lat, "location_longitude": lon,
                      "location_time": now_ms - 500, "location_accuracy": accuracy,
                      "location_source": "gps", "device_number": caller})


def post(url: str, server_cert: Path, data: str, **auth: object) -> requests.Response:
    return requests.post(url, data=data, verify=str(server_cert), timeout=10,
                         headers={"Content-Type": "application/x-www-form-urlencoded"},
                         **auth)  # type: ignore[arg-type]


def test_fixes_reach_the_record_and_the_card(
        centre: tuple[Sandbox, ConsoleProcess, str, tuple[Path, Path, Path]],
        browser: Browser) -> None:
    box, console, url, (_ca, client_cert, client_key) = centre
    server_cert = Path(box.config.asterisk.runtime_dir).parent / "aml" / "aml-cert.pem"
    # Unauthenticated: 401 without credentials, and a client certificate nobody issued.
    assert post(url, server_cert, "x=1").status_code == 401
    assert post(url, server_cert, "x=1", auth=("telkomsel", "not-the-secret-at-all")
                ).status_code == 401
    metrics = requests.get(url + "/metrics", verify=str(server_cert), timeout=5).text
    assert 'result="unauthenticated"} 2' in metrics
    # An authenticated sender's refused message: answered 200, stored and chained.
    refused = post(url, server_cert, form(number(), 95.0, 112.75, 9), auth=("telkomsel", SECRET))
    assert refused.status_code == 200 and "latitude-out-of-range" in refused.text, refused.text
    refused_id = int(refused.text.split()[2])

    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    with Phone("127.0.0.1", user="op3578") as phone:
        phone.register(f"sip:{box.phone_target}", "op3578", "secret-op3578", timeout=5)
        # Asterisk rings a phone behind the edge once its qualify finds it: with serve, at once.
        wait_contact(box, "op3578", "Avail")
        phone.auto_answer(1.0)
        log_in(tab, console, "op3578")
        caller = number()
        # The handset's fix comes first (client certificate), then the call, promptly.
        early = post(url, server_cert, form(caller, *SURABAYA_FIX, 9),
                     cert=(str(client_cert), str(client_key)))
        assert early.status_code == 200 and early.text.startswith("OK accepted"), early.text
        early_id = int(early.text.split()[2])
        placing, out = in_background(medical_call, box, caller, 9_000)
        card = tab.locator(".card", has=tab.locator(".number", has_text=caller))
        card.locator(".handset-text").wait_for(timeout=15_000)
        assert "± 9 m" in card.locator(".handset-text").inner_text()
        assert card.locator(".marker-network").count() == 1  # the cell's, untouched
        assert card.locator(".marker-aml").count() == 0  # not shown without the operator
        card.locator(".show-handset").click()
        assert card.locator(".marker-aml").count() == 1
        assert card.locator(".show-handset").is_hidden()
        linkedid = card.get_attribute("data-linkedid")
        assert linkedid
        # A newer fix, HTTP Basic from the sender's network: the offer is updated, the map
        # is not moved.
        listed = run_cli(box.config, "aml", "list", "--json")
        assert early_id in {f["id"] for f in json.loads(listed.stdout)}
        newer = post(url, server_cert, form(caller, round(SURABAYA_FIX[0] + 0.001, 6),
                                            SURABAYA_FIX[1], 5), auth=("telkomsel", SECRET))
        assert newer.status_code == 200, newer.text
        tab.wait_for_function(
            "([l]) => { const c = document.querySelector(`.card[data-linkedid='${l}']`);"
            " return c && c.querySelector('.handset-text').textContent.includes('± 5 m'); }",
            arg=[linkedid], timeout=10_000)
        assert card.locator(".show-handset").is_visible()
        shot(tab, "aml-handset-fix")
        placing.join(60)
        assert out["result"].returncode == 0
    assert box.wait_no_channels() == 0
    context.close()
    assert errors == [], errors

    shown = run_cli(box.config, "calls", "show", linkedid, "--json")
    fixes = json.loads(shown.stdout)["fixes"]
    assert sorted(f["id"] for f in fixes) == [early_id, early_id + 1]
    assert {f["number"] for f in fixes} == {caller}
    text = run_cli(box.config, "calls", "show", linkedid).stdout
    assert "handset fixes (AML)" in text and "±9 m" in text
    assert json.loads(run_cli(box.config, "aml", "list", "--unmatched", "--json").stdout) == []
    # The chain, with the raw text: the early fix under no call when it came, then with the
    # call's identity once it matched; the newer one with the call's; the refused one under
    # no call.
    events = _user_events(box, "AMLFix", 4)
    assert sorted((int(e["FixId"]), e.get("Linkedid", "")) for e in events) == [
        (refused_id, ""), (early_id, ""), (early_id, linkedid), (early_id + 1, linkedid)]
    assert all(e["Raw1"] and e["RawSha256"] for e in events)
    assert {e["Rejected"] for e in events if int(e["FixId"]) == refused_id} == {
        "latitude-out-of-range"}


def test_a_fix_in_kota_batu_moves_a_kab_malang_caller_ahead_of_a_later_one(
        centre: tuple[Sandbox, ConsoleProcess, str, tuple[Path, Path, Path]]) -> None:
    box, _console, url, _client = centre
    server_cert = Path(box.config.asterisk.runtime_dir).parent / "aml" / "aml-cert.pem"
    first, later = number(), number()
    callers = box.workdir / f"callers-{first}.csv"
    callers.write_text(f"SEQUENTIAL\n{first};{MALANG_CELL}\n")
    calls = [in_background(lambda: run_scenario(
        "uac_112_medical.xml", box.sip_target, workdir=box.workdir, timeout_s=90,
        extra=("-inf", str(callers), "-d", "60000")))]
    with ami_session(box.config) as ami:
        first_id = _wait_queued(ami, "reg-3507", 1)[0]
        # The later caller: dialled 118 (no menu) with a PIDF-LO in Kota Batu.
        calls.append(in_background(lambda: run_scenario(
            "uac_112_pidf.xml", box.sip_target, service="118", workdir=box.workdir,
            timeout_s=90, extra=("-d", "60000", "-key", "pai",
                                 f"<sip:{later}@mno.example;user=phone>", "-key", "lat",
                                 str(BATU[0]), "-key", "lon", str(BATU[1]),
                                 "-key", "rules", "<gp:usage-rules/>"))))
        later_id = _wait_queued(ami, "reg-3579", 1)[0]
        answer = post(url, server_cert, form(first, *BATU, 20), auth=("telkomsel", SECRET))
        assert answer.status_code == 200 and "accepted" in answer.text, answer.text
        assert _wait_queued(ami, "reg-3579", 2) == [first_id, later_id]
        assert _wait_queued(ami, "reg-3507", 0) == []
        box.asterisk.cli("channel request hangup all")
    for thread, _out in calls:
        thread.join(90)
    assert box.wait_no_channels() == 0
    hops = [e for e in _user_events(box, "AMLRoute", 1) if e["Linkedid"] == first_id]
    assert [(h["From"], h["To"], h["Position"]) for h in hops] == [("reg-3507", "reg-3579", "1")]
    fixes = json.loads(run_cli(box.config, "calls", "show", first_id, "--json").stdout)["fixes"]
    assert [f["routed_to"] for f in fixes] == ["reg-3579"]


def _wait_queued(ami: AMIConnection, queue: str, count: int, timeout: float = 30.0) -> list[str]:
    """The uniqueids waiting in ``queue``, in queue order, once there are ``count``."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [e for e in ami.send_list_action("QueueStatus", Queue=queue).events
                   if e.event == "QueueEntry"]
        entries.sort(key=lambda e: int(e.get("Position") or 0))
        if len(entries) == count:
            return [e.get("Uniqueid") or "" for e in entries]
        assert time.monotonic() < deadline, f"{queue}: {len(entries)} waiting, not {count}"
        time.sleep(0.1)


def _user_events(box: Sandbox, kind: str, count: int,
                 timeout: float = 10.0) -> list[dict[str, str]]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from telephony.store import open_database

    deadline = time.monotonic() + timeout
    engine = open_database(box.config)
    try:
        while True:
            with Session(engine) as session:
                payloads = [json.loads(p) for p in session.scalars(
                    select(AuditEvent.payload).where(AuditEvent.type == "UserEvent"))]
            found = [p for p in payloads if p.get("UserEvent") == kind]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)
    finally:
        engine.dispose()
