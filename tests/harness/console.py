"""The operator console as the tests drive it: `telephony console` as a subprocess, a
centre (sandbox, serve and console with two operators' web logins), and the page's helpers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page
from sqlalchemy import select
from sqlalchemy.orm import Session

from telephony.audit import AuditEvent
from telephony.config import Config, as_set_flags
from telephony.location import import_cells, import_routes, load_regions
from telephony.pbx.provision import AsteriskInstall
from telephony.store import open_database
from tests.harness import CHECKOUT
from tests.harness.net import free_port
from tests.harness.sandbox import Sandbox, start_sandbox
from tests.harness.service import ServeProcess, run_cli, terminate
from tests.harness.sipp import SippResult, run_scenario

ROOT = CHECKOUT
CONFIG = ROOT / "config"
ARTIFACTS = ROOT / "var" / "test-artifacts"
SURABAYA_CELL = "5101012340012345"
SURABAYA = ("-7.2575", "112.7521")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
OPERATORS = {"op3578": "35.78", "op3573": "35.73"}
_numbers = iter(range(1, 10_000))


class ConsoleProcess:
    """`telephony console` as a subprocess; ready once /healthz says AMI and DB are up."""

    def __init__(self, config: Config, log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
        argv = [sys.executable, "-m", "telephony.cli", "--log-format", "json",
                *as_set_flags(config), "console"]
        self.config = config
        self.url = f"http://{config.console.bind}:{config.console.port}"
        self._log = log_path.open("a")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                data: dict[str, Any] = json.loads(answer.read())
                return data
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if health is not None and health["ami"] and health["database"]:
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"console not ready (health {health}): {self._log.name}")
            time.sleep(0.05)

    def stop(self) -> None:
        terminate(self.proc, 10)
        self._log.close()


@contextmanager
def running_centre(install: AsteriskInstall, root: Path, *overrides: str,
                   operators: dict[str, str] | None = None,
                   ) -> Iterator[tuple[Sandbox, ServeProcess, ConsoleProcess]]:
    """A sandbox with operators (op3578 and op3573 unless given: id -> regency), serve, and
    the console with their logins."""
    operators = operators or OPERATORS
    roster = root / "operators.toml"
    roster.write_text("".join(
        f'[[operator]]\nid = "{op}"\nregency = "{code}"\npassword = "secret-{op}"\n\n'
        for op, code in operators.items()))
    box = start_sandbox(install, root, f"operators.file={roster}", "location.pidf_lo=true",
                        f"console.port={free_port()}", "operators.wrapup_s=1", *overrides)
    try:
        engine = open_database(box.config)
        import_routes(engine, CONFIG / "routing.example.csv",
                      regions=load_regions(CONFIG / "regions.toml"))
        import_cells(engine, CONFIG / "cells.example.csv")
        engine.dispose()
        for op in operators:
            added = run_cli(box.config, "console", "users", "add", op, "--role", "operator",
                            "--operator", op, "--password-stdin", stdin=f"web-{op}-pass\n")
            assert added.returncode == 0, added.stderr
        service = ServeProcess(box.config, root / "serve.log")
        console = ConsoleProcess(box.config, root / "console.log")
        try:
            service.wait_ready()
            console.wait_ready()
            yield box, service, console
        finally:
            console.stop()
            service.stop()
    finally:
        box.stop()


def log_in(tab: Page, console: ConsoleProcess, op: str) -> None:
    """Log in on the console page and become available there, as an operator would."""
    tab.goto(f"{console.url}/")
    tab.fill("#name", op)
    tab.fill("#password", f"web-{op}-pass")
    tab.click("#login-button")
    tab.wait_for_function("window.consoleLive !== undefined")
    tab.click("#available")
    tab.wait_for_function("document.getElementById('presence').textContent === 'Siap'")


def console_actions(box: Sandbox, where: Any) -> list[dict[str, Any]]:
    """Payloads of the UserEvents in the audit chain that match `where`."""
    engine = open_database(box.config)
    try:
        with Session(engine) as session:
            return [json.loads(p) for p in session.scalars(select(AuditEvent.payload).where(
                where, AuditEvent.type == "UserEvent"))]
    finally:
        engine.dispose()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def number() -> str:
    return f"+628139{next(_numbers):06d}"


def medical_call(box: Sandbox, caller: str, hold_ms: int = 6000) -> SippResult:
    callers = box.workdir / f"callers-{caller}.csv"
    callers.write_text(f"SEQUENTIAL\n{caller};{SURABAYA_CELL}\n")
    return run_scenario("uac_112_medical.xml", box.sip_target, workdir=box.workdir,
                        timeout_s=60, extra=("-inf", str(callers), "-d", str(hold_ms)))


def in_background(fn: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", fn(*args)))
    thread.start()
    return thread, out


def wall(monotonic_at: float) -> float:
    return monotonic_at + time.time() - time.monotonic()


