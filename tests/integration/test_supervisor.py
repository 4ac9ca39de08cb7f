"""The supervisor's tools on a real centre (Asterisk, serve, console): major-incident messages
heard by pjsua2 callers from cells inside and outside the area (the AMI record of what was
played, the key and silent budgets, the audit chain), the wallboard in Chromium with SIPp
callers, and the report from the calls the tests made.
Kota Surabaya (35.78) is the message's area; Kab. Malang (35.07) is outside it.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page

from telephony.audit import AuditEvent
from telephony.control import Watcher, watching
from telephony.pbx.provision import AsteriskInstall
from telephony.phone import CallHandle, Phone
from tests.harness.console import (
    ARTIFACTS,
    SURABAYA_CELL,
    ConsoleProcess,
    console_actions,
    running_centre,
    shot,
    wall,
)
from tests.harness.sandbox import Sandbox
from tests.harness.service import ServeProcess, run_cli

pytestmark = pytest.mark.asterisk

SILENT_BUDGET_S = 12.0
KEY_BUDGET_S = 2.0
# config/routing.example.csv: TAC 8705 (0x2201), ECI 703710 (0xABCDE) -> Kab. Malang 35.07.
MALANG_CELL = "51010220100ABCDE"
TEXT = "Kebakaran Gunung Bromo sudah ditangani."
_numbers = iter(range(1, 10_000))


@dataclass(frozen=True)
class Centre:
    box: Sandbox
    service: ServeProcess
    console: ConsoleProcess
    message: dict[str, object]


@pytest.fixture(scope="module")
def centre(asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Centre]:
    root = tmp_path_factory.mktemp("message")
    with running_centre(asterisk_install, root) as (box, service, console):
        added = run_cli(box.config, "console", "users", "add", "spv", "--role", "supervisor",
                        "--password-stdin", stdin="web-spv-pass\n")
        assert added.returncode == 0, added.stderr
        done = run_cli(box.config, "message", "publish", "--text", TEXT, "--regencies", "35.78",
                       "--minutes", "30", "--json")
        assert done.returncode == 0, done.stderr
        message = json.loads(done.stdout)
        # serve re-reads the active messages every messages.refresh_s: wait for it to say so.
        deadline = time.monotonic() + 10
        while not any(message["id"] in r.get("ids", []) for r in service.events("messages.active")):
            assert time.monotonic() < deadline, "serve never took the message up"
            time.sleep(0.05)
        yield Centre(box, service, console, message)


@pytest.fixture
def ami(centre: Centre) -> Iterator[Watcher]:
    with watching(centre.box.config) as watcher:
        yield watcher
    assert centre.box.wait_no_channels() == 0


def dial(box: Sandbox, phone: Phone, number: str, cell: str) -> CallHandle:
    return phone.call(f"sip:112@{box.sip_target}", headers={
        "P-Asserted-Identity": f"<sip:{number}@{box.config.asterisk.trunk_address};user=phone>",
        "P-Access-Network-Info": f"3GPP-E-UTRAN-FDD; utran-cell-id-3gpp={cell}; "
                                 "network-provided"})


def caller() -> str:
    return f"+628127{next(_numbers):06d}"


def _joined(ami: Watcher, number: str, timeout: float = 20.0) -> tuple[float, str, dict[str, str]]:
    join = ami.wait_for("QueueCallerJoin", lambda f: f.get("CallerIDNum") == number, timeout)
    linkedid = join.frame.get("Linkedid") or ""
    queued = ami.wait_for("UserEvent", lambda f: f.get("UserEvent") == "CallQueued"
                          and f.get("Linkedid") == linkedid, 5)
    return join.at, linkedid, dict(queued.frame.fields)


def _user_events(ami: Watcher, linkedid: str, name: str) -> list[dict[str, str]]:
    return [dict(f.fields) for f in ami.for_call(linkedid) if f.get("UserEvent") == name]


def test_a_silent_caller_from_the_area_hears_it_and_is_queued_within_12s(
        centre: Centre, ami: Watcher) -> None:
    box, message = centre.box, centre.message
    number = caller()
    with Phone("127.0.0.2") as phone:
        call = dial(box, phone, number, SURABAYA_CELL)
        call.wait_confirmed(10)
        joined, linkedid, fields = _joined(ami, number)
        call.hangup()
        call.wait_disconnected(10)
    assert call.confirmed_at is not None
    played = _user_events(ami, linkedid, "MessagePlayed")
    assert [p["MessageId"] for p in played] == [str(message["id"])]
    assert _user_events(ami, linkedid, "MessageSkipped") == []
    waited = joined - call.confirmed_at
    print(f"silent caller with the message queued {waited:.2f}s after answer")
    assert waited <= SILENT_BUDGET_S
    assert fields["Queue"] == "reg-3578"
    # Who heard it is in the audit chain, on the caller's own channel identity.
    deadline = time.monotonic() + 10
    while not (heard := console_actions(box, AuditEvent.linkedid == linkedid)) or not [
            p for p in heard if p.get("UserEvent") == "MessagePlayed"]:
        assert time.monotonic() < deadline, "MessagePlayed never reached the audit chain"
        time.sleep(0.1)
    entry = next(p for p in heard if p.get("UserEvent") == "MessagePlayed")
    assert entry["Uniqueid"] == linkedid and entry["Linkedid"] == linkedid


def test_a_key_during_the_message_skips_it_and_queues_within_the_key_budget(
        centre: Centre, ami: Watcher) -> None:
    box, message = centre.box, centre.message
    number = caller()
    with Phone("127.0.0.2") as phone:
        call = dial(box, phone, number, SURABAYA_CELL)
        call.wait_confirmed(10)
        started = ami.wait_for("UserEvent", lambda f: f.get("UserEvent") == "MessagePlayed"
                               and f.get("CallerIDNum") == number, 10)
        # Into the message, as a caller who has heard enough presses a key.
        time.sleep(max(0.0, started.at + 0.8 - time.monotonic()))
        pressed = time.monotonic()
        call.send_dtmf("2")
        joined, linkedid, fields = _joined(ami, number)
        call.hangup()
        call.wait_disconnected(10)
    print(f"key during the message: queued {joined - pressed:.2f}s after the key")
    assert joined - pressed <= KEY_BUDGET_S
    assert fields["EmergencyType"] == "medical"
    skipped = _user_events(ami, linkedid, "MessageSkipped")
    assert [(s["MessageId"], s["Digit"]) for s in skipped] == [(str(message["id"]), "2")]


def test_a_caller_from_outside_the_area_does_not_hear_it(
        centre: Centre, ami: Watcher) -> None:
    box = centre.box
    number = caller()
    with Phone("127.0.0.2") as phone:
        call = dial(box, phone, number, MALANG_CELL)
        call.wait_confirmed(10)
        # A silent caller outside hears welcome and menu as ever, then is queued.
        _joined_at, linkedid, fields = _joined(ami, number)
        call.hangup()
        call.wait_disconnected(10)
    assert fields["Queue"] == "reg-3507"
    assert _user_events(ami, linkedid, "MessagePlayed") == []


@pytest.fixture
def board(centre: Centre, browser: Browser,
          request: pytest.FixtureRequest) -> Iterator[Page]:
    console: ConsoleProcess = centre.console
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, bypass_csp=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(f"{console.url}/login")
    tab.fill("#name", "spv")
    tab.fill("#password", "web-spv-pass")
    tab.click("#login-button")
    tab.wait_for_url(f"{console.url}/")
    tab.goto(f"{console.url}/wallboard")
    tab.wait_for_function("window.wallboardData !== undefined")
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"), full_page=True)
    context.close()
    assert errors == [], errors


WAITING = """([code, at_least]) => {
  const cell = document.querySelector(`[data-regency="${code}"] .waiting`);
  return cell && Number(cell.textContent) >= at_least ? Date.now() / 1000 : false;
}"""
ABANDONED = """([code, count]) => {
  const cell = document.querySelector(`[data-regency="${code}"] .abandoned`);
  return cell && Number(cell.textContent) >= count;
}"""


def test_the_wallboard_shows_a_waiting_call_within_a_second_and_counts_its_abandon(
        centre: Centre, ami: Watcher,
        board: Page) -> None:
    box = centre.box
    before = int(board.locator('[data-regency="35.78"] .abandoned').inner_text())
    number = caller()
    # Nobody is available in 35.78: the caller waits in the queue until they hang up.
    with Phone("127.0.0.2") as phone:
        call = dial(box, phone, number, SURABAYA_CELL)
        call.wait_confirmed(10)
        # A key during the message queues them at once (were it lost, the IVR's deadline would).
        started = ami.wait_for("UserEvent", lambda f: f.get("UserEvent") == "MessagePlayed"
                               and f.get("CallerIDNum") == number, 10)
        time.sleep(max(0.0, started.at + 0.8 - time.monotonic()))
        call.send_dtmf("2")
        joined = ami.wait_for("QueueCallerJoin", lambda f: f.get("CallerIDNum") == number, 20)
        shown = board.wait_for_function(WAITING, arg=["35.78", 1], timeout=10_000).json_value()
        delay = shown - wall(joined.at)
        print(f"wallboard showed the waiting call {delay:.3f}s after it joined the queue")
        shot(board, "wallboard-waiting")
        assert delay <= 1.0, f"shown {delay:.3f}s after the queue join"
        call.hangup()
        call.wait_disconnected(10)
    board.wait_for_function(ABANDONED, arg=["35.78", before + 1], timeout=10_000)
    assert board.locator('[data-regency="35.78"] .waiting').inner_text() == "0"
    operators = board.locator('[data-regency="35.78"] .operators li')
    assert "op3578 Keluar" in operators.first.inner_text()  # logged out, with its timer
    assert operators.first.get_attribute("class") == "logged-out"
    # A supervisor classifies the call as a prank: the chain's ConsoleAction reaches the count.
    prank = int(board.locator('[data-regency="35.78"] .prank').inner_text())
    csrf = board.request.get(f"{centre.console.url}/api/me").json()["csrf_token"]
    classified = board.request.post(
        f"{centre.console.url}/api/calls/{joined.frame.get('Linkedid')}/classification",
        data={"category": "prank", "note": ""}, headers={"X-CSRF-Token": csrf})
    assert classified.status == 200, classified.text()
    board.wait_for_function(
        """([code, count]) => Number(document.querySelector(
             `[data-regency="${code}"] .prank`).textContent) >= count""",
        arg=["35.78", prank + 1], timeout=10_000)
    message = board.locator("#messages li").first
    assert "Kebakaran Gunung Bromo" in message.inner_text()
    assert board.evaluate("window.wallboardData.panels.messages[0].heard") >= 2


def test_the_report_covers_the_calls_made_and_downloads_from_the_console(
        centre: Centre, board: Page) -> None:
    box = centre.box
    today = datetime.now(ZoneInfo(box.config.console.timezone)).date().isoformat()
    done = run_cli(box.config, "report", "--regency", "35.78", "--from", today, "--to", today,
                   "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # The calls of this module from Surabaya: silent, key, wallboard (and any still ending).
    assert report["offered"] >= 3
    rows = report["sections"]["calls"]["rows"]
    assert any(r["emergency_type"] == "medical" and r["outcome"] == "abandoned-in-queue"
               for r in rows), rows
    assert sum(r["calls"] for r in report["sections"]["answer_times"]["rows"]) == 0
    nuisance = {r["category"]: r["calls"] for r in report["sections"]["nuisance"]["rows"]}
    assert nuisance.get("prank", 0) >= 1
    console: ConsoleProcess = centre.console
    got = board.request.get(f"{console.url}/api/reports?regency=35.78&from={today}&to={today}"
                            "&format=csv")
    assert got.status == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(got.text())))
    assert table[0]["section"] == "offered" and int(table[0]["calls"]) == report["offered"]
    html = board.request.get(f"{console.url}/api/reports?regency=35.78&from={today}"
                             f"&to={today}&format=html").text()
    assert html.count("<svg") == 4 and "<script" not in html


def test_a_supervisor_publishes_a_circle_message_from_the_wallboard_and_ends_it(
        centre: Centre, board: Page) -> None:
    board.fill("#publish [name=text_id]", "Jalan tol Gempol ditutup.")
    board.fill("#publish [name=circle]", "-7.5500,112.6900,5000")
    board.fill("#publish [name=minutes]", "5")
    board.click("#publish button")
    board.locator("#publish-result").filter(has_text="#").wait_for(timeout=10_000)
    made = board.locator("#publish-result").inner_text()
    message_id = made.split()[0].removeprefix("#")
    item = board.locator(f'#messages li[data-message="{message_id}"]')
    item.wait_for(timeout=5000)
    assert "r=5000 m" in item.inner_text()
    item.locator("button").click()
    item.locator("button").wait_for(state="detached", timeout=5000)
    listed = run_cli(centre.box.config, "message", "list", "--all", "--json")
    found = next(m for m in json.loads(listed.stdout) if str(m["id"]) == message_id)
    assert found["created_by"] == "spv" and found["active"] is False
    assert found["circle"] == {"lat": -7.55, "lon": 112.69, "radius_m": 5000.0}
    # Both are in the audit chain under no call, by the supervisor's name.
    deadline = time.monotonic() + 10
    wanted = {("message-publish", "spv"), ("message-expire", "spv")}
    while not wanted <= {(p.get("Operation"), p.get("User")) for p in console_actions(
            centre.box, AuditEvent.linkedid == "") if p.get("MessageId") == message_id}:
        assert time.monotonic() < deadline, "the message's actions are not in the chain"
        time.sleep(0.2)  # the writer commits in batches


def test_message_list_and_expire(centre: Centre,
                                 tmp_path: Path) -> None:
    box, service, message = centre.box, centre.service, centre.message
    listed = run_cli(box.config, "message", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [m["id"] for m in json.loads(listed.stdout)] == [message["id"]]
    ended = run_cli(box.config, "message", "expire", str(message["id"]), "--json")
    assert ended.returncode == 0, ended.stderr
    assert json.loads(ended.stdout)["active"] is False
    assert json.loads(run_cli(box.config, "message", "list", "--json").stdout) == []
    service.wait_for("messages.active", 10, after=1)
