"""Bench part ``console``: ring -> card latency with many operator consoles connected.

A bench centre (serve, bench operators answering by SIPp) runs one load without consoles,
then the same load with `telephony console` and ``clients`` WebSocket clients logged in as
supervisors (they see every card), each standing in for a browser; serve's FastAGI and
audit-lag figures and INVITE->200 of both runs sit side by side in the result. For every
call, each client's latency is the time from the operator SIPp logging the ring (the INVITE
reaching a phone) to that client receiving the first card of the call that shows it
ringing. Both clocks are this machine's wall clock.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from telephony.config import Config, as_set_flags
from telephony.console import accounts
from telephony.console.accounts import Role
from telephony.pbx.provision import AsteriskInstall
from telephony.store import open_database
from tests.harness.net import free_port
from tests.harness.perf.centre import Centre, Staff
from tests.harness.perf.load import Calls, Load
from tests.harness.perf.stats import summarize
from tests.harness.service import clean_env, terminate

CLIENTS = 50
LOAD = Load(rate=1.0, calls=30, hold_s=4.0, audio=False)
PASSWORD = "bench-console-pass"


class ConsoleRun:
    def __init__(self, config: Config, log_path: Path) -> None:
        self.url = f"http://{config.console.bind}:{config.console.port}"
        self._log = log_path.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "telephony.cli", "--log-format", "json",
             *as_set_flags(config), "console"],
            stdout=self._log, stderr=subprocess.STDOUT, env=clean_env(), text=True)

    def ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    if json.loads(answer.read()) == {"database": True, "ami": True}:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"console not ready after {timeout}s: {self._log.name}")

    def stop(self) -> None:
        terminate(self.proc, 10)
        self._log.close()


class Client(threading.Thread):
    """One console: logs in, holds the WebSocket, notes when each call first rings."""

    def __init__(self, url: str, name: str) -> None:
        super().__init__(daemon=True)
        self.url, self.name = url, name
        self.first_ring: dict[str, float] = {}
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.error = ""

    def _cookie(self) -> str:
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        request = urllib.request.Request(
            f"{self.url}/api/login", method="POST",
            data=json.dumps({"name": self.name, "password": PASSWORD}).encode(),
            headers={"Content-Type": "application/json"})
        opener.open(request, timeout=30).close()
        return "; ".join(f"{c.name}={c.value}" for c in jar)

    def run(self) -> None:
        try:
            ws_url = self.url.replace("http", "ws", 1) + "/api/live"
            with connect(ws_url, additional_headers={"Cookie": self._cookie()}) as socket:
                socket.recv(timeout=30)  # the snapshot
                self.connected.set()
                while not self.stop.is_set():
                    try:
                        message = socket.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    at = time.time()
                    event = json.loads(message)
                    card = event.get("call")
                    if card and card["ringing"] and card["number"] not in self.first_ring:
                        self.first_ring[card["number"]] = at
        except Exception as exc:  # reported in the result, not raised from a thread
            self.error = f"{type(exc).__name__}: {exc}"
            self.connected.set()


Timings = Callable[[Path], dict[str, Any]]


def _measure(centre: Centre, root: Path, name: str, load: Load,
             own_timings: Timings) -> tuple[dict[str, Any], set[str]]:
    """One load through a fresh serve: its FastAGI and audit-lag figures, INVITE->200."""
    probe = root / f"probe-{name}.json"
    service = centre.serve(f"serve-{name}", probe_out=probe).ready()
    calls = Calls(centre, load, root, f"calls-{name}").start()
    phase = calls.wait()
    service.stop()
    timings = own_timings(probe)
    figures = {
        "answered": phase.answered,
        "invite_to_200_ms": None if phase.setup_ms is None else phase.setup_ms.as_dict(3),
        "agi_ms": timings["agi_ms"],
        "audit_lag_ms": timings["audit_lag_ms"],
    }
    return figures, {number for number, _mode in calls.people}


def run(install: AsteriskInstall, work: Path, own_timings: Timings, clients: int = CLIENTS,
        load: Load = LOAD) -> dict[str, Any]:
    """The same load without, then with, ``clients`` consoles connected, in one centre."""
    root = work / "console"
    with Centre(install, root, Staff(count=4, answer_ms=1000),
                overrides=[f"console.port={free_port()}",
                           f"console.login_attempts={clients * 2}"]) as centre:
        engine = open_database(centre.config)
        try:
            for n in range(clients):
                accounts.add_user(engine, f"bench{n:03d}", Role.SUPERVISOR, None, PASSWORD)
        finally:
            engine.dispose()
        without, _ = _measure(centre, root, "without", load, own_timings)
        console = ConsoleRun(centre.config, root / "console.log")
        try:
            console.ready()
            watchers = [Client(console.url, f"bench{n:03d}") for n in range(clients)]
            for watcher in watchers:
                watcher.start()
            for watcher in watchers:
                watcher.connected.wait(60)
            with_consoles, numbers = _measure(centre, root, "with", load, own_timings)
            time.sleep(2.0)  # the last cards
            for watcher in watchers:
                watcher.stop.set()
                watcher.join(5)
        finally:
            console.stop()
        rings: dict[str, float] = {}
        for mark in centre.phones.rings():
            if mark.number in numbers:
                rings.setdefault(mark.number, mark.at)
    latencies = [(at - rings[number]) * 1000 for w in watchers
                 for number, at in w.first_ring.items() if number in rings]
    missing = sum(1 for w in watchers for number in rings if number not in w.first_ring)
    summary = summarize(latencies)
    return {
        "clients": clients,
        "load": load.as_dict(),
        "rung_calls": len(rings),
        "ring_to_card_ms": None if summary is None else summary.as_dict(3),
        "cards_missing": missing,
        "client_errors": sorted({w.error for w in watchers if w.error}),
        "without_consoles": without,
        "with_consoles": with_consoles,
    }
