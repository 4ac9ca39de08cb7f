"""Incidents end to end: real Asterisk, serve, `telephony console`, a pjsua2 operator phone,
SIPp callers, Chromium, and an agency's HTTPS webhook receiver with a throw-away CA.

Operators: op3578 (Kota Surabaya) and one in each regency around Gunung Bromo. Agencies are
the test's own: psc119-sby with the receiver as webhook, damkar-sby that must acknowledge
within 1 s (the escalation), damkar-lmj in Kab. Lumajang. Retries are fast (0.5 s, capped at
1 s) so an outage costs seconds, not minutes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page
from sqlalchemy import select
from sqlalchemy.orm import Session

from telephony.audit import AuditEvent
from telephony.incidents.models import Outbox
from telephony.location import import_cells, import_routes, load_regions
from telephony.location.pidf import PidfLocation, parse_pidf
from telephony.pbx.provision import AsteriskInstall
from telephony.phone import Phone
from telephony.store import open_database
from tests.harness.console import (
    CONFIG,
    ConsoleProcess,
    console_actions,
    in_background,
    log_in,
    medical_call,
    number,
    running_centre,
    shot,
)
from tests.harness.receiver import Receiver
from tests.harness.sandbox import Sandbox, wait_contact
from tests.harness.service import run_cli
from tests.harness.sipp import SippResult, run_scenario

pytestmark = pytest.mark.asterisk
SECRET = "agency-shared-secret-for-the-test"
OPERATORS = {"op3578": "35.78", "op3513": "35.13", "op3514": "35.14", "op3507": "35.07",
             "op3508": "35.08"}
# Cells on the four sides of the Bromo caldera (TAC 0x2001.., ECI 0x100001..), routed to
# the regency each stands in, as an operator's routing table would.
BROMO = {"35.13": (8193, 1048577, -7.930, 112.958), "35.14": (8194, 1048578, -7.900, 112.935),
         "35.07": (8195, 1048579, -7.990, 112.900), "35.08": (8196, 1048580, -8.010, 112.948)}


def _agencies(path: Path, url: str, secret_file: Path) -> None:
    path.write_text(
        f'[[agency]]\nid = "psc119-sby"\nname = "PSC 119 Surabaya"\nkind = "psc119"\n'
        f'regency = "35.78"\nack_timeout_s = 300\nwebhook_url = "{url}"\n'
        f'webhook_secret_file = "{secret_file}"\n\n'
        '[[agency]]\nid = "damkar-sby"\nname = "Damkar Surabaya"\nkind = "damkar"\n'
        'regency = "35.78"\nack_timeout_s = 1\n\n'
        '[[agency]]\nid = "damkar-lmj"\nname = "Damkar Lumajang"\nkind = "damkar"\n'
        'regency = "35.08"\n')


def _bromo_tables(root: Path) -> tuple[Path, Path]:
    """The example tables (an import replaces a table) with the Bromo cells added."""
    cells, routes = root / "bromo-cells.csv", root / "bromo-routes.csv"
    cells.write_text((CONFIG / "cells.example.csv").read_text() + "".join(
                         f"LTE,510,10,{tac},{eci},1,{lon},{lat},1500,9,1,1700000000,"
                         f"1720000000,-90\n" for tac, eci, lat, lon in BROMO.values()))
    routes.write_text((CONFIG / "routing.example.csv").read_text() + "".join(
        f"510,10,{tac},{eci},{code}\n" for code, (tac, eci, _, _) in BROMO.items()))
    return cells, routes


@dataclass
class Centre:
    box: Sandbox
    console: ConsoleProcess
    receiver: Receiver
    root: Path


@pytest.fixture(scope="module")
def centre(asterisk_install: AsteriskInstall,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centre]:
    root = tmp_path_factory.mktemp("incidents")
    receiver = Receiver(root / "receiver", SECRET)
    receiver.start()
    secret_file = root / "psc119-sby.key"
    secret_file.write_text(SECRET + "\n")
    agencies = root / "agencies.toml"
    _agencies(agencies, receiver.url, secret_file)
    with running_centre(
            asterisk_install, root, "console.login_attempts=1000000",
            f"incidents.agencies_file={agencies}", f"incidents.webhook_ca_file={receiver.cert}",
            "incidents.retry_first_s=0.5", "incidents.retry_max_s=1",
            "incidents.webhook_timeout_s=1", "incidents.outbox_interval_s=0.2",
            "incidents.link_distance_m=10000", operators=OPERATORS) as (box, _service, console):
        engine = open_database(box.config)
        cells, routes = _bromo_tables(root)
        import_cells(engine, cells)
        import_routes(engine, routes, regions=load_regions(CONFIG / "regions.toml"))
        engine.dispose()
        added = run_cli(box.config, "console", "users", "add", "agency-psc", "--role", "agency",
                        "--agency", "psc119-sby", "--password-stdin", stdin="web-agency-pass\n")
        assert added.returncode == 0, added.stderr
        added = run_cli(box.config, "console", "users", "add", "spv", "--role", "supervisor",
                        "--password-stdin", stdin="web-spv-pass\n")
        assert added.returncode == 0, added.stderr
        held = Centre(box, console, receiver, root)
        yield held
        held.console.stop()
    receiver.stop()


def _context_page(browser: Browser) -> Page:
    # Playwright's wait_for_function evaluates strings, which the console's CSP forbids.
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
    tab = context.new_page()
    tab.on("pageerror", lambda exc: pytest.fail(f"page error: {exc}"))
    return tab


def _api(console: ConsoleProcess, name: str, password: str) -> requests.Session:
    session = requests.Session()
    answer = session.post(f"{console.url}/api/login", json={"name": name, "password": password},
                          timeout=10)
    assert answer.status_code == 200, answer.text
    session.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return session


def _actions(box: Sandbox, operation: str, count: int = 1) -> list[dict[str, Any]]:
    """The chained ConsoleActions of ``operation``, once serve's writer has committed them."""
    deadline = time.monotonic() + 10
    while True:
        found = [p for p in console_actions(box, AuditEvent.payload.contains(operation))
                 if p.get("Operation") == operation]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)  # the writer commits in batches


def test_a_live_call_becomes_an_incident_dispatched_signed_and_acknowledged_by_the_agency(
        centre: Centre, browser: Browser) -> None:
    box, receiver = centre.box, centre.receiver
    caller = number()
    page = _context_page(browser)
    with Phone("127.0.0.1", user="op3578") as phone:
        phone.register(f"sip:{box.phone_target}", "op3578", "secret-op3578", timeout=5)
        # Asterisk rings a phone behind the edge once its qualify finds it: with serve, at once.
        wait_contact(box, "op3578", "Avail")
        phone.auto_answer(0.5)
        log_in(page, centre.console, "op3578")
        placing, out = in_background(medical_call, box, caller, 9000)
        phone.wait_incoming(30).wait_confirmed(10)
        card = page.locator(".card.mine")
        card.locator(".create-incident").click(timeout=10_000)
        article = page.locator("#incident-list article.incident").first
        article.locator(".dispatch").wait_for(timeout=5000)
        incident_id = int(article.get_attribute("data-id") or 0)
        linkedid = card.get_attribute("data-linkedid")
        article.locator(".agency").select_option("psc119-sby")
        article.locator(".dispatch").click()
        [delivery] = receiver.wait(1, 10)
        # The operator's own point goes beside the caller's location; markup stays text.
        article.locator(".incident-fields .address").fill("Jl. <i>Pemuda</i> 1")
        article.locator(".incident-fields .point").fill("-7.2600, 112.7500")
        article.locator(".save-incident").click()
        article.locator(".timeline li[data-kind='updated']").wait_for(timeout=5000)
        article.locator(".agency").select_option("damkar-sby")
        article.locator(".dispatch").click()
        # damkar-sby does not acknowledge within its 1 s: the supervisor's alert, live.
        page.locator(f"#incident-alerts li[data-incident='{incident_id}']").wait_for(
            timeout=10_000)
        placing.join(60)
        assert out["result"].ok, out["result"].output + out["result"].errors
    # The supervisor's wallboard: both hand-offs under their agencies, the unacknowledged
    # one flagged, each with its time since dispatch.
    board = _context_page(browser)
    board.goto(f"{centre.console.url}/login")
    board.fill("#name", "spv")
    board.fill("#password", "web-spv-pass")
    board.click("#login-button")
    board.wait_for_url(f"{centre.console.url}/")
    board.goto(f"{centre.console.url}/wallboard")
    flagged = board.locator(f"#incidents [data-agency='damkar-sby'].alert "
                            f"li.alert[data-incident='{incident_id}']")
    flagged.wait_for(timeout=5000)
    assert "sejak diserahkan" in (flagged.text_content() or "")
    board.locator(f"#incidents [data-agency='psc119-sby'] li[data-incident='{incident_id}']"
                  ":not(.alert)").wait_for(timeout=5000)
    shot(board, "wallboard-incidents")
    assert delivery.signed and delivery.headers["X-Telephony-Retry"] == "false"
    assert delivery.headers["X-Telephony-Attempt"] == "1" and delivery.headers["Idempotency-Key"]
    body = delivery.body
    [component] = body["incidentComponent"]
    assert component["incidentTrackingIdentifier"] == str(incident_id)
    assert component["incidentTypeCommonRegistryText"] == "medical"
    assert body["callbackNumber"] == caller
    assert body["callComponent"] == [{"componentIdentifier": f"call-{linkedid}",
                                      "callIdentifier": linkedid}]
    where = parse_pidf(body["locationComponent"][0]["locationByValue"])
    assert isinstance(where, PidfLocation) and where.best is not None
    assert where.best.lat is not None and abs(where.best.lat - -7.265) < 0.01  # Surabaya cell
    shown = json.loads(run_cli(box.config, "incidents", "show", str(incident_id),
                               "--json").stdout)
    assert (shown["lat"], shown["lon"], shown["address"]) == (-7.26, 112.75, "Jl. <i>Pemuda</i> 1")
    assert shown["caller_lat"] is not None and abs(shown["caller_lat"] - -7.265) < 0.01

    # The agency user sees only what was handed to their agency, and moves it on.
    agency = _context_page(browser)
    agency.goto(f"{centre.console.url}/")
    agency.fill("#name", "agency-psc")
    agency.fill("#password", "web-agency-pass")
    agency.click("#login-button")
    mine = agency.locator(f"#incident-list article[data-id='{incident_id}']")
    mine.locator(".incident-head").click(timeout=10_000)
    typed = '<img src=x onerror="document.title=1">; DROP TABLE incidents; ${EXTEN}'
    mine.locator(".incident-note").fill(typed)
    mine.locator(".add-note").click()
    for step in ("acknowledged", "en-route", "on-scene"):
        mine.locator(f".step[data-step='{step}']:not([disabled])").click(timeout=5000)
        mine.locator(f".timeline li[data-kind='{step}']").wait_for(timeout=5000)
    # The operator's panel follows live, and the note is text, not markup.
    article.locator(".timeline li[data-kind='on-scene']").wait_for(timeout=5000)
    shot(page, "incident-operator")
    shot(agency, "incident-agency")
    kinds = [k for k in article.locator(".timeline li").evaluate_all(
        "items => items.map((i) => i.dataset.kind)")]
    assert kinds[:2] == ["created", "dispatched"] and "delivered" in kinds
    assert [k for k in kinds if k in ("acknowledged", "en-route", "on-scene")] == [
        "acknowledged", "en-route", "on-scene"]
    assert article.locator(".timeline q").first.text_content() == typed
    assert page.locator("#incidents img").count() == 0 and page.title() != "1"
    for tab in (page, agency):
        tab.context.close()
    created = _actions(box, "incident-created")
    assert any(p["User"] == "op3578" and p["Linkedid"] == linkedid for p in created)
    [ack] = [p for p in _actions(box, "incident-acknowledged")
             if p["Incident"] == str(incident_id)]
    assert ack["User"] == "agency-psc" and ack["Agency"] == "psc119-sby"
    verified = run_cli(box.config, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _outbox(box: Sandbox, key: str = "") -> Outbox:
    engine = open_database(box.config)
    try:
        with Session(engine) as session:
            query = select(Outbox).order_by(Outbox.id.desc())
            if key:
                query = query.where(Outbox.idempotency_key == key)
            row = session.scalars(query).first()
            assert row is not None
            session.expunge(row)
            return row
    finally:
        engine.dispose()


def _until(what: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_handoff_survives_a_slow_receiver_an_outage_and_a_console_restart(
        centre: Centre) -> None:
    box, receiver = centre.box, centre.receiver
    caller = number()
    called = medical_call(box, caller, 1000)  # nobody answers: a recent call
    assert called.ok, called.output + called.errors
    listed = run_cli(box.config, "calls", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [linkedid] = [c["linkedid"] for c in json.loads(listed.stdout) if c["caller"] == caller]
    made = run_cli(box.config, "incidents", "create", "--call", linkedid, "--type", "medical",
                   "--note", "<script>x</script>", "--json")
    assert made.returncode == 0, made.stderr
    incident = json.loads(made.stdout)
    assert incident["narrative"] == "<script>x</script>" and incident["linkedids"] == [linkedid]
    before = len(receiver.deliveries)
    receiver.mode = "hang"  # a slow receiver: accepted, never answered
    sent = run_cli(box.config, "incidents", "dispatch", str(incident["id"]), "--agency",
                   "psc119-sby", "--json")
    assert sent.returncode == 0, sent.stderr
    key = _outbox(box).idempotency_key
    _until(lambda: _outbox(box, key).attempts >= 1 and _outbox(box, key).last_error, 10)
    assert "Timeout" in _outbox(box, key).last_error
    started = time.monotonic()
    assert requests.get(f"{centre.console.url}/healthz", timeout=2).ok
    assert time.monotonic() - started < 0.5  # the console does not wait for receivers
    receiver.mode = "garbage"  # a receiver answering something that is not HTTP
    _until(lambda: "RemoteProtocolError" in _outbox(box, key).last_error, 10)
    receiver.stop()  # the agency's outage
    _until(lambda: "ConnectError" in _outbox(box, key).last_error, 10)
    centre.console.stop()
    centre.console = ConsoleProcess(box.config, centre.root / "console-2.log")
    centre.console.wait_ready()
    receiver.mode = "up"
    receiver.start()
    delivered = receiver.wait(before + 1, 15)[before:]
    _until(lambda: _outbox(box, key).delivered_at is not None, 5)
    time.sleep(1.0)  # five more outbox passes: nothing is sent again
    assert len(receiver.deliveries) == before + 1
    [again] = delivered
    assert again.signed and again.headers["Idempotency-Key"] == key
    assert again.headers["X-Telephony-Retry"] == "true"
    assert int(again.headers["X-Telephony-Attempt"]) == _outbox(box, key).attempts >= 4
    shown = run_cli(box.config, "incidents", "show", str(incident["id"]), "--json")
    kinds = [e["kind"] for e in json.loads(shown.stdout)["timeline"]]
    assert kinds == ["created", "dispatched", "delivered"], kinds
    assert {p["User"] for p in _actions(box, "incident-dispatched")} >= {"cli"}


def _bromo_call(box: Sandbox, caller: str, code: str) -> SippResult:
    tac, eci, _, _ = BROMO[code]
    callers = box.workdir / f"callers-{caller}.csv"
    callers.write_text(f"SEQUENTIAL\n{caller};51010{tac:04X}{eci:07X}\n")
    return run_scenario("uac_112_medical.xml", box.sip_target, workdir=box.workdir,
                        timeout_s=60, extra=("-inf", str(callers), "-d", "9000"))


def _their_call(session: requests.Session, console: ConsoleProcess, caller: str) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for card in session.get(f"{console.url}/api/calls", timeout=5).json():
            if card["number"] == caller and card["location"]:
                return str(card["linkedid"])
        time.sleep(0.1)
    raise AssertionError(f"no card for {caller}")


def test_the_bromo_fire_is_one_incident_shared_by_the_four_regencies(centre: Centre) -> None:
    box, console = centre.box, centre.console
    ops = {code: _api(console, op, f"web-{op}-pass") for op, code in OPERATORS.items()}
    callers = {code: number() for code in BROMO}
    placing = [in_background(_bromo_call, box, callers[code], code) for code in BROMO]
    calls = {code: _their_call(ops[code], console, callers[code]) for code in BROMO}
    url = f"{console.url}/api"
    made = ops["35.13"].post(f"{url}/incidents", json={"linkedid": calls["35.13"],
                                                       "type": "fire"}, timeout=10)
    assert made.status_code == 200, made.text
    incident_id = made.json()["id"]
    assert ops["35.78"].get(f"{url}/incidents/{incident_id}", timeout=5).status_code == 403
    shared = run_cli(box.config, "incidents", "share", str(incident_id), "--regency", "35.08",
                     "--json")
    assert shared.returncode == 0, shared.stderr
    for code in ("35.14", "35.07", "35.08"):
        proposed = ops[code].get(f"{url}/calls/{calls[code]}/proposals", timeout=5).json()
        assert [p["incident"]["id"] for p in proposed] == [incident_id], proposed
        linked = ops[code].post(f"{url}/incidents/{incident_id}/calls",
                                json={"linkedid": calls[code]}, timeout=10)
        assert linked.status_code == 200, linked.text
    # Lumajang adds its own agency and a note; every regency sees the same incident.
    sent = ops["35.08"].post(f"{url}/incidents/{incident_id}/dispatch",
                             json={"agency_id": "damkar-lmj"}, timeout=10)
    assert sent.status_code == 200, sent.text
    assert ops["35.08"].post(f"{url}/incidents/{incident_id}/notes",
                             json={"text": "Jalur Ranu Pane ditutup"}, timeout=10).ok
    for code in BROMO:
        seen = ops[code].get(f"{url}/incidents/{incident_id}", timeout=5).json()
        assert sorted([seen["regency_code"], *seen["shared_with"]]) == sorted(BROMO)
        assert sorted(seen["linkedids"]) == sorted(calls.values())
        assert [h["agency_id"] for h in seen["handoffs"]] == ["damkar-lmj"]
    for thread, _out in placing:
        thread.join(60)
    assert all(out["result"].ok for _thread, out in placing)
    assert {p["User"] for p in _actions(box, "incident-shared", 3)} == {"cli", "op3514",
                                                                         "op3507"}
    listed = json.loads(run_cli(box.config, "incidents", "list", "--json").stdout)
    assert any(i["id"] == incident_id and i["calls"] == 4 for i in listed)
    agencies = json.loads(run_cli(box.config, "agencies", "list", "--json").stdout)
    assert [a["id"] for a in agencies] == ["psc119-sby", "damkar-sby", "damkar-lmj"]
    assert box.wait_no_channels() == 0
