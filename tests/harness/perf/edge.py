"""The edge's cost (`scripts/bench --only edge`): INVITE->200 through Kamailio and without
it, against the same Asterisk in the same run, and Kamailio's CPU per call.

Both kinds of call reach the very same endpoint, dialplan and running `telephony serve`:
"edge" calls from the trunk's address to Kamailio; "direct" calls from Kamailio's own inside
address to Asterisk, with the X-Telephony-Trunk header, i.e. exactly what the edge would
have relayed, minus the edge. Calls go one at a time and alternate, so that the machine's
other load falls on both alike; each is timed in Python (perf_counter: SIPp's rtd has a
4 ms tick here) from INVITE sent to 200 received, then ACKed and ended with BYE.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from telephony.contract import SOURCE_HEADER, TRUNK_HEADER
from telephony.pbx.provision import AsteriskInstall
from tests.harness.net import TRUNK
from tests.harness.perf.centre import Centre, Staff
from tests.harness.perf.stats import summarize
from tests.harness.perf.usage import tree_cpu_s
from tests.harness.raw import invite
from tests.harness.sandbox import INSIDE

GAP_S = 0.02
IDLE_WINDOW_S = 3.0


def _target(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def run(install: AsteriskInstall, work: Path, calls: int) -> dict[str, Any]:
    """`calls` of each kind, alternating; figures in ms, ratios edge/direct."""
    with Centre(install, work / "edge", Staff(4)) as centre:
        centre.serve("serve").ready()
        assert centre.edge is not None
        kamailio = centre.edge.pid()
        assert kamailio is not None
        edge_at, direct_at = _target(centre.sip_target), _target(centre.asterisk_target)
        # What Kamailio adds for trunk "mno" (the default trunk at TRUNK).
        header = f"{TRUNK_HEADER}: mno\r\n{SOURCE_HEADER}: {TRUNK}:5060\r\n".encode()
        for _ in range(5):  # warm up both paths (first-call allocations, caches)
            invite(edge_at, source=TRUNK)
            invite(direct_at, source=INSIDE, extra=header)
        idle_start, idle_cpu = time.monotonic(), tree_cpu_s(kamailio)
        time.sleep(IDLE_WINDOW_S)
        idle_rate = (tree_cpu_s(kamailio) - idle_cpu) / (time.monotonic() - idle_start)
        samples: dict[str, list[float]] = {"edge": [], "direct": []}
        failed = {"edge": 0, "direct": 0}
        started, cpu_before = time.monotonic(), tree_cpu_s(kamailio)
        for n in range(2 * calls):
            kind = "edge" if n % 2 == 0 else "direct"
            found = (invite(edge_at, source=TRUNK) if kind == "edge"
                     else invite(direct_at, source=INSIDE, extra=header))  # fmt: skip
            if found.code == 200:
                samples[kind].append(found.setup_s * 1000)
            else:
                failed[kind] += 1
            time.sleep(GAP_S)
        duration = time.monotonic() - started
        cpu = tree_cpu_s(kamailio) - cpu_before - idle_rate * duration
    edge, direct = summarize(samples["edge"]), summarize(samples["direct"])
    ratios = {}
    if edge and direct:
        ratios = {p: round(getattr(edge, p) / getattr(direct, p), 3) for p in ("p50", "p95", "p99")}
    return {
        "calls_each": calls,
        "failed": failed,
        "edge_ms": edge.as_dict(3) if edge else None,
        "direct_ms": direct.as_dict(3) if direct else None,
        "ratios": ratios,
        "kamailio_cpu_ms_per_call": round(cpu * 1000 / max(1, len(samples["edge"])), 3),
        "kamailio_idle_cpu_percent": round(idle_rate * 100, 3),
        "method": "alternating one-at-a-time INVITE/200/ACK/BYE, perf_counter; CPU: utime+stime "
                  "of Kamailio and its children over the run, less its idle rate",
    }
