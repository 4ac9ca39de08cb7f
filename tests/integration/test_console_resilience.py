"""The console under trouble, on PostgreSQL: stopped for 20 s (SIGSTOP) while calls run, and
losing Asterisk's AMI or its database. Calls never depend on it; it says what is wrong in
words and recovers by itself.

Needs TELEPHONY_TEST_POSTGRES_URL (scripts/test sets it; in CI PostgreSQL must answer). The
database outage is this test's own database refusing connections, so other tests on the same
server are not disturbed.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

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
from tests.harness.sandbox import Sandbox, wait_contact

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres]

PG_URL = os.environ.get("TELEPHONY_TEST_POSTGRES_URL", "")
STOPPED_S = 20.0


@pytest.fixture(scope="module")
def database() -> Iterator[tuple[str, str, Engine]]:
    if not PG_URL:
        pytest.skip("TELEPHONY_TEST_POSTGRES_URL is not set")
    name = f"telephony_console_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name, query={"connect_timeout": "2"})
    try:
        yield url.render_as_string(hide_password=False), name, admin
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def centre(asterisk_install: AsteriskInstall, database: tuple[str, str, Engine],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, ConsoleProcess]]:
    root = tmp_path_factory.mktemp("console-resilience")
    with running_centre(asterisk_install, root,
                        f"audit.database_url={database[0]}") as (box, _service, console):
        yield box, console


@pytest.fixture
def page(centre: tuple[Sandbox, ConsoleProcess], browser: Browser,
         request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    tab = context.new_page()
    log_in(tab, centre[1], "op3578")
    yield tab
    shot(tab, f"{request.node.name}-end")
    context.close()


def banner(page: Page) -> str:
    shown = page.locator("#banner")
    return shown.inner_text() if shown.is_visible() else ""


def wait_banner(page: Page, says: str | None, timeout: float) -> None:
    """Until the banner says `says` (None: until it is gone)."""
    deadline = time.monotonic() + timeout
    while True:
        text_now = banner(page)
        if (says is None and not text_now) or (says is not None and says in text_now):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"banner {text_now!r}, waited for {says!r}")
        time.sleep(0.1)


def test_a_stopped_console_stalls_no_call_and_catches_up_when_resumed(
    centre: tuple[Sandbox, ConsoleProcess], page: Page
) -> None:
    box, console = centre
    callers = [number(), number()]
    with Phone("127.0.0.1", user="op3578") as phone:
        phone.register(f"sip:{box.phone_target}", "op3578", "secret-op3578", timeout=5)
        wait_contact(box, "op3578")  # behind the edge: ringable from its first qualify
        phone.auto_answer(0.5)
        console.proc.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            for caller in callers:
                placing, out = in_background(medical_call, box, caller, 2000)
                phone.wait_incoming(20).wait_confirmed(10)  # answered as usual
                placing.join(40)
                assert out["result"].ok, out["result"].output + out["result"].errors
            assert time.monotonic() - stopped_at < STOPPED_S
            time.sleep(max(0.0, STOPPED_S - (time.monotonic() - stopped_at)))
        finally:
            console.proc.send_signal(signal.SIGCONT)
        for caller in callers:
            page.locator(".recent-call").filter(has_text=caller).wait_for(timeout=15_000)
        shot(page, "console-caught-up")
    assert box.wait_no_channels() == 0


def test_the_console_says_when_ami_or_the_database_is_lost_and_recovers(
    centre: tuple[Sandbox, ConsoleProcess], database: tuple[str, str, Engine], page: Page
) -> None:
    box, _console = centre
    _url, name, admin = database
    box.asterisk.stop()
    try:
        wait_banner(page, "Koneksi ke Asterisk (AMI) terputus", 15)
        shot(page, "console-ami-down")
    finally:
        box.asterisk.start(box.config.asterisk.boot_timeout_s)
    wait_banner(page, None, 20)

    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = :name"), {"name": name})
    try:
        wait_banner(page, "Basis data tidak dapat dijangkau", 15)
        shot(page, "console-database-down")
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    wait_banner(page, None, 20)
    page.click("#language")
    assert page.locator("#banner").is_hidden()


