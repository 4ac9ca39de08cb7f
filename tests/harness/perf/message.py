"""Bench part ``message``: a major-incident message active while 10 calls/s come from its area.

One bench centre (serve, bench operators answering by SIPp, callers from the bench cell in
35.73) runs the load without a message, then a message for 35.73 is published (spoken by
espeak-ng, as `telephony message publish` does) and the same load runs again: no call may be
lost and silent callers must ring within 12 s of the answer. The run without the message is
the baseline the ratios compare against; how many callers heard it is read from the audit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telephony.audit import AuditEvent
from telephony.pbx.provision import AsteriskInstall
from telephony.store import open_database
from tests.harness.perf import results
from tests.harness.perf.centre import REGENCY, Centre, Staff
from tests.harness.perf.load import Load, run
from tests.harness.service import run_cli

RATE_CPS = 10.0
# Silent callers are queued ~10.5 s after the answer: the hold outlasts that and the ring.
LOADS = {"quick": Load(rate=RATE_CPS, calls=100, hold_s=16.0),
         "full": Load(rate=RATE_CPS, calls=600, hold_s=20.0)}
TEXT = "Kebakaran Gunung Bromo sudah ditangani. Petugas menuju lokasi."
SILENT_RING_BUDGET_S = 12.0


def _heard(centre: Centre) -> int:
    engine = open_database(centre.config)
    try:
        with Session(engine) as session:
            return session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.type == "UserEvent",
                AuditEvent.payload.contains('"MessagePlayed"'))) or 0
    finally:
        engine.dispose()


def _idle(centre: Centre, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while centre.asterisk.channel_count() and time.monotonic() < deadline:
        time.sleep(0.2)


def run_part(install: AsteriskInstall, work: Path, profile: str, staff: Staff) -> dict[str, Any]:
    load = LOADS[profile]
    with Centre(install, work / "message", staff) as centre:
        service = centre.serve("serve").ready()
        without = run(centre, load, work, "message-off").as_dict()
        _idle(centre)
        done = run_cli(centre.config, "message", "publish", "--text", TEXT, "--regencies",
                       REGENCY, "--minutes", "30", "--json")
        if done.returncode != 0:
            raise RuntimeError(f"message publish failed: {done.stderr.strip()}")
        message = json.loads(done.stdout)
        service.wait_for("messages.active", 15)
        with_message = run(centre, load, work, "message-on").as_dict()
        _idle(centre)
        heard = _heard(centre)
    p99 = results.dig(with_message, "ring_silent_s.p99")
    return {
        "load": load.as_dict(), "message_seconds": message["seconds"],
        "without": without, "with": with_message, "heard": heard,
        "ratios": {f"ring_silent_{p}": results.ratio(
            results.dig(with_message, f"ring_silent_s.{p}"),
            results.dig(without, f"ring_silent_s.{p}")) for p in ("p50", "p95", "p99")},
        "met": (with_message["calls"]["failed"] == 0
                and with_message["calls"]["unrung_silent"] == 0
                and p99 is not None and p99 <= SILENT_RING_BUDGET_S),
    }


def summary_lines(found: dict[str, Any]) -> list[str]:
    def triple(data: dict[str, Any]) -> str:
        values = [results.dig(data, f"ring_silent_s.{p}") for p in ("p50", "p95", "p99")]
        return "/".join("-" if v is None else f"{v:.3g}" for v in values)

    w, o = found["with"], found["without"]
    return [
        f"  message ({found['load']['rate_cps']:g} calls/s from its area, "
        f"{found['load']['calls']} calls, {found['message_seconds']} s message, "
        f"heard by {found['heard']}):",
        f"    silent INVITE->ring s p50/p95/p99: with {triple(w)}, without {triple(o)}",
        f"    failed with / without: {w['calls']['failed']} / {o['calls']['failed']}; silent "
        f"never rung: {w['calls']['unrung_silent']} / {o['calls']['unrung_silent']}; failed "
        f"open {w['calls']['failed_open']}; target (none lost, silent ring <= 12 s): "
        f"{'met' if found['met'] else 'MISSED'}",
    ]
