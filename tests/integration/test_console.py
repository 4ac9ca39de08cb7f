"""The operator console end to end: real Asterisk, serve, `telephony console`, a pjsua2
operator phone, SIPp callers, and Debian's Chromium driven by Playwright.

Operator op3578 (Kota Surabaya) logs in on the console and makes themself available there;
callers come from a Kota Surabaya cell (config/routing.example.csv: TAC 4660, ECI 74565).
A screenshot of every test goes to var/test-artifacts/.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from playwright.sync_api import Browser, Page
from schemathesis.core.result import Ok

from telephony.audit import AuditEvent
from telephony.pbx.provision import AsteriskInstall
from telephony.phone import Phone
from tests.harness.console import (
    ARTIFACTS,
    SURABAYA,
    ConsoleProcess,
    console_actions,
    in_background,
    log_in,
    medical_call,
    number,
    running_centre,
    shot,
    wall,
)
from tests.harness.net import free_port, wait_udp_bound
from tests.harness.sandbox import Sandbox, wait_contact
from tests.harness.service import run_cli
from tests.harness.sipp import run_scenario

pytestmark = pytest.mark.asterisk

@pytest.fixture(scope="module")
def centre(asterisk_install: AsteriskInstall,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, ConsoleProcess]]:
    root = tmp_path_factory.mktemp("console")
    uas_port = free_port(socket.SOCK_DGRAM, "127.0.0.2")
    # The API fuzz tries logins by the hundred: the throttle has its own unit test.
    with running_centre(asterisk_install, root, "console.login_attempts=1000000",
                        f"callbacks.trunk_contact=sip:127.0.0.2:{uas_port}") as (
            box, _service, console):
        yield box, console


@pytest.fixture
def phone(centre: tuple[Sandbox, ConsoleProcess]) -> Iterator[Phone]:
    box = centre[0]
    with Phone("127.0.0.1", user="op3578") as op_phone:
        op_phone.register(f"sip:{box.phone_target}", "op3578", "secret-op3578", timeout=5)
        # Asterisk rings a phone behind the edge once its qualify finds it: with serve, at once.
        wait_contact(box, "op3578", "Avail")
        op_phone.auto_answer(2.0)
        yield op_phone
    assert box.wait_no_channels() == 0


@pytest.fixture
def page(centre: tuple[Sandbox, ConsoleProcess], browser: Browser,
         request: pytest.FixtureRequest) -> Iterator[Page]:
    console = centre[1]
    # Playwright's wait_for_function evaluates strings, which the console's CSP forbids.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(tab, console, "op3578")
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"), full_page=True)
    context.close()
    assert errors == [], errors


CARD_READY = """([number, etype, regency]) => {
  const card = [...document.querySelectorAll('.card.ringing.mine')]
    .find((c) => c.querySelector('.number').textContent === number);
  if (!card) return false;
  const ok = card.querySelector('.etype').textContent === etype
    && card.querySelector('.regency').textContent === regency
    && card.querySelector('.leaflet-marker-icon') !== null;
  return ok ? Date.now() / 1000 : false;
}"""


def test_the_ring_card_shows_number_medical_regency_and_map_within_a_second(
    centre: tuple[Sandbox, ConsoleProcess], phone: Phone, page: Page
) -> None:
    box = centre[0]
    caller = number()
    placing, out = in_background(medical_call, box, caller, 12_000)
    incoming = phone.wait_incoming(30)
    assert incoming.invite_at is not None
    shown = page.wait_for_function(CARD_READY, arg=[caller, "Medis", "Kota Surabaya"],
                                   timeout=10_000).json_value()
    delay = shown - wall(incoming.invite_at)
    shot(page, "console-ring-card")
    assert delay <= 1.0, f"the card was complete {delay:.3f}s after the INVITE"
    card = page.locator(".card.mine")
    assert card.locator(".marker-network").count() == 1  # a cell: the network's marker
    assert card.locator(".leaflet-interactive.uncertainty").count() == 1
    assert card.locator(".reference-point").count() > 30  # the regencies' seats
    assert card.locator(".leaflet-control-scale").count() == 1
    assert "routing-table" in card.locator(".how").inner_text()
    assert "reg-3578" in card.locator(".hops").inner_text()
    assert card.locator(".history").inner_text() == "Belum pernah menelepon."
    # Classify while talking, with a note that looks like markup: it stays text.
    incoming.wait_confirmed(10)
    card.locator(".category").select_option("prank")
    card.locator(".note").fill("<b>tertawa</b> lalu tutup")
    page.keyboard.press("Alt+s")
    try:
        card.locator(".classified").filter(has_text="Iseng").wait_for(timeout=5000)
    except Exception:
        raise AssertionError(card.inner_text()) from None
    placing.join(60)
    assert out["result"].ok, out["result"].output + out["result"].errors
    page.locator(".recent-call").filter(has_text=caller).wait_for(timeout=10_000)
    assert page.locator(".card").count() == 0


def test_a_second_call_from_the_number_shows_the_first_and_its_classification(
    centre: tuple[Sandbox, ConsoleProcess], phone: Phone, page: Page
) -> None:
    box = centre[0]
    caller = number()
    note_text = 'sunyi <img src=x onerror="window.pwned=1">'
    for call_no, (category, note) in enumerate((("ghost", note_text), (None, None))):
        placing, out = in_background(medical_call, box, caller, 3000)
        phone.wait_incoming(30).wait_confirmed(10)
        card = page.locator(".card.mine")
        card.wait_for(timeout=5000)
        if category:
            card.locator(".category").select_option(category)
            card.locator(".note").fill(note or "")
            card.locator(".classify button").click()
            card.locator(".classified").filter(has_text="Diam").wait_for(timeout=5000)
        else:
            entry = card.locator(".history-entry")
            entry.filter(has_text="Diam / hantu: sunyi").wait_for(timeout=5000)
            assert entry.count() == 1
            assert entry.inner_text().endswith(note_text)  # shown as typed: text, not markup
            assert page.evaluate("window.pwned") is None
            badge = card.locator(".nuisance")
            assert badge.is_visible() and "Diam ×1" in badge.inner_text()
            shot(page, "console-history")
            page.click("#language")
            entry.filter(has_text="Ghost / silent: sunyi").wait_for(timeout=5000)
            assert card.locator(".etype").inner_text() == "Medical"
        placing.join(60)
        assert out["result"].ok, f"call {call_no}: {out['result'].output}{out['result'].errors}"
        page.locator(".card").first.wait_for(state="detached", timeout=10_000)


def test_a_pidf_lo_call_shows_the_handset_marker(
    centre: tuple[Sandbox, ConsoleProcess], phone: Phone, page: Page
) -> None:
    box = centre[0]
    caller = number()
    placing, out = in_background(lambda: run_scenario(
        "uac_112_pidf.xml", box.sip_target, workdir=box.workdir, timeout_s=60,
        extra=("-d", "14000", "-key", "pai", f"<sip:{caller}@mno.example;user=phone>",
               "-key", "lat", SURABAYA[0], "-key", "lon", SURABAYA[1],
               "-key", "rules", "<gp:usage-rules/>")))
    phone.wait_incoming(30)
    card = page.locator(".card.mine")
    card.locator(".marker-handset").wait_for(timeout=5000)
    shot(page, "console-handset-location")
    assert card.locator(".marker-network").count() == 0
    assert card.locator(".regency").inner_text() == "Kota Surabaya"
    assert "pidf-lo" in card.locator(".how").inner_text() or \
        "geoloc-profile" in card.locator(".how").inner_text()
    placing.join(60)
    assert out["result"].ok, out["result"].output + out["result"].errors
    # After the call: classified from the recent-calls list.
    row = page.locator(".recent-call").filter(has_text=caller)
    row.locator(".category").select_option("information")
    row.locator(".note").fill("setelah panggilan")
    row.locator("button").click()
    row.locator(".result").filter(has_text="recorded").wait_for(timeout=5000)
    row.filter(has_text="Informasi").wait_for(timeout=5000)


def test_handover_from_the_card_moves_the_caller_to_the_other_regency_and_is_audited(
    centre: tuple[Sandbox, ConsoleProcess], phone: Phone, page: Page
) -> None:
    box = centre[0]
    caller = number()
    with Phone("127.0.0.1", user="op3573") as malang:
        malang.register(f"sip:{box.phone_target}", "op3573", "secret-op3573", timeout=5)
        wait_contact(box, "op3573")  # behind the edge: ringable from its first qualify
        malang.auto_answer(0.5)
        assert run_cli(box.config, "operators", "login", "op3573").returncode == 0
        try:
            placing, out = in_background(medical_call, box, caller, 12_000)
            phone.wait_incoming(30).wait_confirmed(10)
            card = page.locator(".card.mine")
            card.locator(".handover").wait_for(timeout=5000)
            card.locator(".target").select_option("35.73")
            card.locator(".handover button").click()
            moved = malang.wait_incoming(15)  # the same caller, now in Kota Malang's queue
            assert moved.from_display_name.startswith("AMB 35.78 ")  # keeps its data
            moved.wait_confirmed(10)
            placing.join(60)
            assert out["result"].ok, out["result"].output + out["result"].errors
        finally:
            run_cli(box.config, "operators", "logout", "op3573")
    linkedid = page.locator(".recent-call").filter(has_text=caller).get_attribute(
        "data-linkedid", timeout=10_000)
    payloads = console_actions(box, AuditEvent.linkedid == linkedid)
    kinds = [(p.get("UserEvent"), p.get("Operation"), p.get("User"), p.get("To"))
             for p in payloads]
    assert ("ConsoleAction", "handover", "op3578", "reg-3573") in kinds
    assert ("Handover", None, None, "reg-3573") in kinds  # the dialplan's own, as for *8
    # Actions about no call (the page's login) are in the chain too, under no call.
    logins = [(p.get("Operation"), p.get("User")) for p in console_actions(
        box, AuditEvent.linkedid == "") if p.get("UserEvent") == "ConsoleAction"]
    assert ("login", "op3578") in logins
    verified = run_cli(box.config, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_callback_list_takes_an_abandoned_caller_rings_the_phone_then_them_and_closes(
    centre: tuple[Sandbox, ConsoleProcess], page: Page
) -> None:
    box = centre[0]
    caller = number()
    # Nobody's phone is registered: the caller waits in the queue, then hangs up.
    abandoned = medical_call(box, caller, 2500)
    assert abandoned.ok, abandoned.output + abandoned.errors
    row = page.locator(".callback").filter(has_text=caller)
    row.wait_for(timeout=15_000)  # swept by serve, listed within the page's refresh
    uas_port = int(box.config.callbacks.trunk_contact.rsplit(":", 1)[1])
    answering, citizen = in_background(lambda: run_scenario(
        "uas_citizen.xml", box.sip_target, source="127.0.0.2", calls=1, timeout_s=40,
        port=uas_port, workdir=box.workdir))
    with Phone("127.0.0.1", user="op3578") as op_phone:
        op_phone.register(f"sip:{box.phone_target}", "op3578", "secret-op3578", timeout=5)
        wait_contact(box, "op3578", "Avail")  # the Originate needs a reachable contact
        op_phone.auto_answer(0.3)
        wait_udp_bound("127.0.0.2", uas_port)
        row.locator("button").first.click()  # take
        incoming = op_phone.wait_incoming(10)
        assert incoming.from_display_name == f"CB {caller}"
        incoming.wait_confirmed(5)
        time.sleep(1.0)  # the operator talks to the citizen
        incoming.hangup()
        incoming.wait_disconnected(5)
    answering.join(45)
    assert citizen["result"].ok, citizen["result"].output + citizen["result"].errors
    row.locator("select").select_option("reached")
    row.locator("button").last.click()  # done
    row.wait_for(state="detached", timeout=10_000)
    wanted = {("callback-take", None), ("callback-done", "reached")}

    def steps() -> set[tuple[str | None, str | None]]:
        return {(p.get("Operation"), p.get("Outcome"))
                for p in console_actions(box, AuditEvent.payload.contains("callback-"))
                if p.get("User") == "op3578"}

    deadline = time.monotonic() + 10
    while not wanted <= steps() and time.monotonic() < deadline:
        time.sleep(0.2)  # serve's writer commits in batches
    assert wanted <= steps()
    assert box.wait_no_channels() == 0


FUZZ_EXAMPLES = 25


def test_no_generated_request_makes_the_api_fail_with_a_server_error(
    centre: tuple[Sandbox, ConsoleProcess]
) -> None:
    """schemathesis generates requests for every operation of /api/openapi.json, sent logged
    in and with the CSRF token, so what is fuzzed is the API's own input handling. Runs last
    in this module: it changes op3573's presence and logs its own sessions out."""
    console = centre[1]
    schema = schemathesis.openapi.from_url(f"{console.url}/api/openapi.json")
    failures: list[str] = []
    sent: list[int] = []
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) >= 12
    with requests.Session() as session:

        def csrf() -> str:
            login = session.post(f"{console.url}/api/login", timeout=10,
                                 json={"name": "op3573", "password": "web-op3573-pass"})
            assert login.status_code == 200, login.text
            token: str = login.json()["csrf_token"]
            return token

        token = [csrf()]
        for operation in operations:

            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def fuzz(case: Any) -> None:
                response = case.call(base_url=console.url, session=session,
                                     headers={"X-CSRF-Token": token[0]})
                sent.append(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: "
                                    f"{response.status_code} {response.text[:200]}")
                if response.status_code == 401 or case.formatted_path == "/api/logout":
                    token[0] = csrf()

            fuzz()
    assert failures == []
    assert len(sent) >= 5 * len(operations) and any(code == 200 for code in sent)
