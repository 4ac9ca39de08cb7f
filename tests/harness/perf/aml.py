"""Bench part ``aml``: handset fixes into the console while calls run.

One bench centre (serve, bench operators answering by SIPp) runs one load without AML, then
the same load with `telephony console` serving the AML receiver, a flood of fixes for
numbers that never call (``FLOOD_THREADS`` keep-alive HTTPS clients, HTTP Basic), and a
sampler: one supervisor WebSocket client that, for each new call it sees, POSTs a fix for
that caller's number and times the ``200`` answer to the first card that carries the fix.
serve's FastAGI and audit-lag figures and INVITE->200 of both runs sit side by side, so an
effect of the flood on call handling shows; the flood's accepted rate is reported.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from websockets.sync.client import connect

from telephony.aml.senders import add_sender
from telephony.console import accounts
from telephony.console.accounts import Role
from telephony.pbx.provision import AsteriskInstall
from telephony.store import open_database
from tests.harness.net import free_port
from tests.harness.perf.centre import Centre, Staff
from tests.harness.perf.consoles import PASSWORD, Client, ConsoleRun, Timings, _measure
from tests.harness.perf.load import Load
from tests.harness.perf.stats import summarize

LOAD = Load(rate=1.0, calls=30, hold_s=6.0, audio=False)
FLOOD_THREADS = 4
SECRET = "bench-aml-shared-secret"


def _form(number: str) -> str:
    now_ms = int(time.time() * 1000)
    return urlencode({"v": "1", "emergency_number": "112", "source": "call", "time": now_ms,
                      "location_latitude": "-7.2650", "location_longitude": "112.7500",
                      "location_time": now_ms - 200, "location_accuracy": "9",
                      "location_source": "gps", "device_number": number})


class Flood(threading.Thread):
    """Fixes for numbers that never call, as fast as one keep-alive client can send."""

    def __init__(self, url: str, cert: Path, index: int) -> None:
        super().__init__(daemon=True)
        self.url, self.cert, self.index = url, cert, index
        self.accepted = self.refused = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            session.auth = ("bench", SECRET)
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            n = 0
            while not self.stop.is_set():
                n += 1
                number = f"+62899{self.index:02d}{n % 1_000_000:06d}"
                try:
                    # verify per request: REQUESTS_CA_BUNDLE would override session.verify.
                    answer = session.post(self.url, data=_form(number), headers=headers,
                                          verify=str(self.cert), timeout=10)
                except requests.RequestException:
                    self.refused += 1
                    continue
                if answer.status_code == 200:
                    self.accepted += 1
                else:
                    self.refused += 1


class Sampler(Client):
    """A supervisor's console that posts a fix for every new call and times its card."""

    def __init__(self, url: str, name: str, aml_url: str, cert: Path) -> None:
        super().__init__(url, name)
        self.aml_url, self.cert = aml_url, cert
        self.posted: dict[int, float] = {}  # fix id -> when its 200 arrived
        self.shown: dict[int, float] = {}
        self._numbers: set[str] = set()
        self._session = requests.Session()

    def run(self) -> None:
        try:
            ws_url = self.url.replace("http", "ws", 1) + "/api/live"
            with connect(ws_url, additional_headers={"Cookie": self._cookie()}) as socket:
                socket.recv(timeout=30)
                self.connected.set()
                while not self.stop.is_set():
                    try:
                        message = socket.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    at = time.time()
                    card = json.loads(message).get("call")
                    if not card:
                        continue
                    fix = card.get("handset")
                    if fix and fix["id"] not in self.shown:
                        self.shown[fix["id"]] = at
                    number = card["number"]
                    if (card["number_kind"] == "e164" and card["phase"] != "ended"
                            and number not in self._numbers):
                        self._numbers.add(number)
                        threading.Thread(target=self._post, args=(number,), daemon=True).start()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.connected.set()

    def _post(self, number: str) -> None:
        answer = requests.post(self.aml_url, data=_form(number), auth=("bench", SECRET),
                               verify=str(self.cert), timeout=10,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        if answer.status_code == 200:
            self.posted[int(answer.text.split()[2])] = time.time()


def run(install: AsteriskInstall, work: Path, own_timings: Timings,
        load: Load = LOAD) -> dict[str, Any]:
    root = work / "aml"
    root.mkdir(parents=True, exist_ok=True)
    senders = root / "aml.toml"
    add_sender(senders, "bench", ["127.0.0.0/8"], SECRET)
    aml_port = free_port()
    with Centre(install, root, Staff(count=4, answer_ms=1000),
                overrides=[f"console.port={free_port()}", f"aml.port={aml_port}",
                           f"aml.senders_file={senders}", "aml.rate_per_s=100000",
                           "aml.rate_burst=100000"]) as centre:
        engine = open_database(centre.config)
        try:
            accounts.add_user(engine, "bench-aml", Role.SUPERVISOR, None, PASSWORD)
        finally:
            engine.dispose()
        without, _ = _measure(centre, root, "without", load, own_timings)
        console = ConsoleRun(centre.config, root / "console.log")
        url = f"https://127.0.0.1:{aml_port}/aml/v1"
        cert = Path(centre.config.asterisk.runtime_dir).parent / "aml" / "aml-cert.pem"
        try:
            console.ready()
            sampler = Sampler(console.url, "bench-aml", url, cert)
            sampler.start()
            sampler.connected.wait(60)
            floods = [Flood(url, cert, n) for n in range(FLOOD_THREADS)]
            flood_started = time.monotonic()
            for flood in floods:
                flood.start()
            with_flood, _ = _measure(centre, root, "with", load, own_timings)
            for flood in floods:
                flood.stop.set()
            flood_s = time.monotonic() - flood_started
            for flood in floods:
                flood.join(15)
            time.sleep(1.0)  # the last cards
            sampler.stop.set()
            sampler.join(5)
        finally:
            console.stop()
    latencies = [(sampler.shown[i] - at) * 1000 for i, at in sampler.posted.items()
                 if i in sampler.shown]
    summary = summarize(latencies)
    accepted = sum(f.accepted for f in floods)
    return {
        "load": load.as_dict(),
        "flood_threads": FLOOD_THREADS,
        "flood_accepted": accepted,
        "flood_refused": sum(f.refused for f in floods),
        "flood_fixes_per_s": round(accepted / flood_s, 1) if flood_s else None,
        "sampled_fixes": len(sampler.posted),
        "accepted_to_card_ms": None if summary is None else summary.as_dict(3),
        "cards_missing": sum(1 for i in sampler.posted if i not in sampler.shown),
        "sampler_error": sampler.error,
        "without_aml": without,
        "with_aml": with_flood,
    }
