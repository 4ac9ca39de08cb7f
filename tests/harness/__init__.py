"""The one test harness: what the tests, scripts/bench and scripts/drill share.

It lives outside the installed product on purpose: it breaks things (SIGSTOP, killed
databases, INVITE floods), runs SIPp and throw-away PostgreSQL clusters, and none of that
belongs on a centre's production host. `telephony test-call` is the product's own way to
rehearse a deployment.

- `net`: free loopback ports and the trunk's address; `service`: `telephony serve` as a
  child process; `sipp`: SIPp runs (scenarios in tests/integration/scenarios/);
  `sandbox`: an isolated Asterisk on free ports; `tls`, `agi`: test certificates, a fake
  Asterisk for FastAGI; `calls`: one call as CEL lines and AMI frames. The pjsua2 callers
  and operators and the AMI event watcher are the product's own (telephony.phone and
  telephony.control, which `telephony test-call` uses);
- `perf/`: the bench and the drills.
"""

from __future__ import annotations

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
"""The clone the harness runs from (it is not installed: scripts run it from here)."""
