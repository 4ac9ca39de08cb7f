"""`telephony console` over HTTPS (for a LAN), its refusal to leave loopback without it, and
its page under its own Content-Security-Policy.

No Asterisk here: the console starts, serves its pages and says AMI is down."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from telephony import config as config_mod
from tests.harness.console import CHROMIUM_FLAGS, ConsoleProcess
from tests.harness.net import free_port
from tests.harness.service import run_cli
from tests.harness.tls import make_certificate


def test_the_console_serves_https_with_a_secure_cookie(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    config = config_mod.load(None, env={}, overrides=[
        f"audit.database_url=sqlite:///{tmp_path / 'telephony.db'}",
        f"asterisk.ami_port={free_port()}", f"asterisk.runtime_dir={tmp_path / 'asterisk'}",
        f"console.port={free_port()}", f"console.tls_cert_file={cert}",
        f"console.tls_key_file={key}"])
    added = run_cli(config, "console", "users", "add", "kepala", "--role", "supervisor",
                    "--password-stdin", stdin="sandi-supervisor\n")
    assert added.returncode == 0, added.stderr
    console = ConsoleProcess(config, tmp_path / "console.log")
    context = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{config.console.port}"
    try:
        console.url = url
        health = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{url}/healthz", context=context, timeout=2) as r:
                    health = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.1)
        assert health == {"database": True, "ami": False}
        request = urllib.request.Request(
            f"{url}/api/login", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"name": "kepala", "password": "sandi-supervisor"}).encode())
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            cookie = answer.headers["Set-Cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    finally:
        console.stop()


def test_off_loopback_the_console_needs_tls(tmp_path: Path) -> None:
    config = config_mod.load(None, env={}, overrides=[
        f"audit.database_url=sqlite:///{tmp_path / 'telephony.db'}"])
    done = run_cli(config, "--set", "console.bind=10.1.2.3", "console", "users", "list")
    assert done.returncode == 2
    assert "console.bind = '10.1.2.3' is not a loopback address" in done.stderr


def test_under_its_own_csp_the_page_runs_its_modules_and_websocket(tmp_path: Path) -> None:
    """The other browser tests bypass the CSP (Playwright's waits evaluate strings); this one
    keeps it: the page logs in, loads Leaflet and its modules, and gets the live snapshot,
    which says in words that AMI is down (there is no Asterisk here)."""
    config = config_mod.load(None, env={}, overrides=[
        f"audit.database_url=sqlite:///{tmp_path / 'telephony.db'}",
        f"asterisk.ami_port={free_port()}", f"asterisk.runtime_dir={tmp_path / 'asterisk'}",
        f"console.port={free_port()}"])
    added = run_cli(config, "console", "users", "add", "kepala", "--role", "supervisor",
                    "--password-stdin", stdin="sandi-supervisor\n")
    assert added.returncode == 0, added.stderr
    console = ConsoleProcess(config, tmp_path / "console.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_FLAGS)
            page = browser.new_page()
            violations: list[str] = []
            page.on("console", lambda m: violations.append(m.text)
                    if "Content Security Policy" in m.text else None)
            for _ in range(100):
                if console.health() is not None:
                    break
                time.sleep(0.1)
            page.goto(f"{console.url}/")
            page.fill("#name", "kepala")
            page.fill("#password", "sandi-supervisor")
            page.click("#login-button")
            page.locator("#banner").filter(has_text="Asterisk (AMI)").wait_for(timeout=10_000)
            assert page.locator("#who").inner_text() == "kepala · Jawa Timur"
            browser.close()
        assert violations == []
    finally:
        console.stop()
