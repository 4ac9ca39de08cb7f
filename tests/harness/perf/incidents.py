"""Bench part ``incidents``: an incident created to its webhook delivered (issue 16's p99 <= 1 s).

A centre (sandbox, serve, `telephony console`) takes one real call; then, one after another,
an incident is created from that call through the console's API and dispatched to an agency
whose webhook is an HTTPS receiver on loopback (receiver up). Each sample is the time from
sending the create request to the receiver having the signed hand-off: two audited API
actions, the outbox commit, the worker's wake-up and the HTTPS POST. The baseline, measured
in the same run, is the bench process POSTing the same body straight to the receiver (TLS
handshake included), the floor any delivery pays.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

import requests

from telephony.incidents.webhook import SIGNATURE_HEADER, sign
from telephony.pbx.provision import AsteriskInstall
from tests.harness.console import medical_call, number, running_centre
from tests.harness.perf.stats import summarize
from tests.harness.receiver import Receiver
from tests.harness.service import run_cli

SAMPLES = 60
SECRET = "bench-agency-secret"


def _baseline(receiver: Receiver, body: bytes, samples: int) -> list[float]:
    context = ssl.create_default_context(cafile=str(receiver.cert))
    took = []
    for _ in range(samples):
        started = time.monotonic()
        request = urllib.request.Request(receiver.url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(receiver.secret, int(time.time()), body)})
        with urllib.request.urlopen(request, context=context, timeout=5) as answer:
            answer.read()
        took.append(time.monotonic() - started)
    return took


def run(install: AsteriskInstall, work: Path, samples: int = SAMPLES) -> dict[str, Any]:
    root = work / "incidents"
    root.mkdir(parents=True, exist_ok=True)
    receiver = Receiver(root / "receiver", SECRET)
    receiver.start()
    secret_file = root / "agency.key"
    secret_file.write_text(SECRET + "\n")
    agencies = root / "agencies.toml"
    agencies.write_text(f'[[agency]]\nid = "psc119-bench"\nname = "PSC 119 Bench"\n'
                        f'kind = "psc119"\nregency = "35.78"\nack_timeout_s = 3600\n'
                        f'webhook_url = "{receiver.url}"\nwebhook_secret_file = "{secret_file}"\n')
    try:
        with running_centre(install, root, f"incidents.agencies_file={agencies}",
                            f"incidents.webhook_ca_file={receiver.cert}") as (box, _s, console):
            caller = number()
            assert medical_call(box, caller, 500).ok
            listed = json.loads(run_cli(box.config, "calls", "list", "--json").stdout)
            [linkedid] = [c["linkedid"] for c in listed if c["caller"] == caller]
            session = requests.Session()
            login = session.post(f"{console.url}/api/login", timeout=10,
                                 json={"name": "op3578", "password": "web-op3578-pass"})
            session.headers["X-CSRF-Token"] = login.json()["csrf_token"]
            took = []
            for n in range(samples):
                started = time.time()
                made = session.post(f"{console.url}/api/incidents", timeout=10,
                                    json={"linkedid": linkedid, "note": f"bench {n}"})
                sent = session.post(f"{console.url}/api/incidents/{made.json()['id']}/dispatch",
                                    json={"agency_id": "psc119-bench"}, timeout=10)
                assert sent.ok, sent.text
                delivery = receiver.wait(n + 1, 30)[n]
                assert delivery.signed
                took.append(delivery.at - started)
            body = json.dumps(receiver.deliveries[0].body, sort_keys=True).encode()
            baseline = _baseline(receiver, body, samples)
    finally:
        receiver.stop()
    ours, floor = summarize(took), summarize(baseline)
    assert ours is not None and floor is not None
    return {"samples": samples, "created_to_delivered_s": ours.as_dict(),
            "baseline_post_s": floor.as_dict(),
            "ratio_p99": round(ours.p99 / floor.p99, 2) if floor.p99 else None}
