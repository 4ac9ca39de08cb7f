"""Drills against the service and its database: calls go through each fault.

Fail-open drills (AGI down, stalled, killed): every caller must still ring an operator;
the figure is the time from INVITE to the first ring. Audit drills (AMI cut, serve killed
and restarted, database stopped or locked): afterwards nothing CEL knows may be missing
from the audit (for the database drills: not even before reconcile), and the chain must
verify. The restart drill: calls up during ``core restart gracefully`` complete, and the
service logs back in by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from telephony.pbx.process import AsteriskError
from tests.harness.perf import faults
from tests.harness.perf.centre import Centre
from tests.harness.perf.load import Calls, Load, Phase
from tests.harness.perf.postgres import Cluster
from tests.harness.perf.verdict import (
    AuditCheck,
    Context,
    DrillError,
    Verdict,
    audit_check,
    wait_until,
)
from tests.harness.service import ServeProcess

READY_S = 30.0
RESTART_S = 120.0


def _started(calls: Calls, count: int) -> None:
    """Wait until the callers have sent ``count`` INVITEs (the load is under way)."""
    wait_until(lambda: len(calls.timeline().invite) >= count, calls.load.window_s + 30,
               f"{count} INVITEs")  # fmt: skip


def _ringing(phase: Phase) -> tuple[bool, str]:
    """Did every call ring an operator, and how soon."""
    total = phase.load.calls
    rung = phase.answered - phase.unrung
    ring = phase.ring_s
    timing = (f"time-to-operator p50 {ring.p50:.2f} s, p99 {ring.p99:.2f} s, max "
              f"{ring.max:.2f} s" if ring else "no call rang")  # fmt: skip
    ok = phase.failed == 0 and rung == total
    return ok, (f"{rung}/{total} calls rang an operator ({rung / total:.0%}); {timing}; "
                f"failed open {phase.failed_open}, SIP failures {phase.failed}")  # fmt: skip


def fail_open(ctx: Context, name: str) -> Verdict:
    """agi-down: the service is not running; agi-stalled: it is frozen (SIGSTOP) while calls
    are in the IVR; agi-killed: it is killed -9 while calls are in the IVR."""
    calls_n = ctx.sized(8, 30)
    # A stalled service holds its callers until the dialplan's guard (12 s) lets them go.
    hold_s = 20 if name == "agi-stalled" else 6
    load = Load(rate=2, calls=calls_n, hold_s=hold_s, key_share=0.5, audio=False)
    with ctx.centre(name) as centre:
        service = centre.serve("serve").ready(READY_S)
        if name == "agi-down":
            service.stop()
        calls = Calls(centre, load, ctx.workdir, f"{name}-calls").start()
        if name == "agi-stalled":
            _started(calls, 2)
            with faults.stalled(service.pid):
                phase = calls.wait()
        else:
            if name == "agi-killed":
                _started(calls, 2)
                faults.kill_process(service.pid)
            phase = calls.wait()
    ok, figure = _ringing(phase)
    return Verdict(name, ok, figure, phase.as_dict())


def _reconnected(service: ServeProcess, since: float) -> float:
    service.wait_for("ami.connected", READY_S, after=1)
    return time.monotonic() - since


def ami_cut(ctx: Context) -> Verdict:
    load = Load(rate=2, calls=ctx.sized(10, 40), hold_s=6, key_share=1.0, audio=False)
    with ctx.centre("ami-cut") as centre:
        service = centre.serve("serve").ready(READY_S)
        calls = Calls(centre, load, ctx.workdir, "ami-cut-calls").start()
        _started(calls, load.calls // 2)
        cut_at = time.monotonic()
        cut = faults.cut_connections(service.pid, centre.config.asterisk.ami_port)
        if cut == 0:
            raise DrillError("the service had no AMI connection to cut")
        back_s = _reconnected(service, cut_at)
        phase = calls.wait()
        check = audit_check(centre, load.calls, repair=True)
    return _audit_verdict("ami-cut", phase, check, f"{cut} AMI connection cut, logged back in "
                          f"after {back_s:.2f} s", {"reconnect_s": back_s})  # fmt: skip


def serve_kill(ctx: Context) -> Verdict:
    load = Load(rate=2, calls=ctx.sized(10, 40), hold_s=6, key_share=1.0, audio=False)
    with ctx.centre("serve-kill") as centre:
        service = centre.serve("serve").ready(READY_S)
        calls = Calls(centre, load, ctx.workdir, "serve-kill-calls").start()
        _started(calls, load.calls // 3)
        killed_at = time.monotonic()
        faults.kill_process(service.pid)
        service.proc.wait(READY_S)
        centre.serve("serve-restarted").ready(READY_S)
        back_s = time.monotonic() - killed_at
        phase = calls.wait()
        check = audit_check(centre, load.calls, repair=True)
    ok, ringing = _ringing(phase)
    verdict = _audit_verdict("serve-kill", phase, check, f"killed -9 and serving again after "
                             f"{back_s:.2f} s", {"restart_s": back_s})  # fmt: skip
    return Verdict(verdict.name, verdict.passed and ok, f"{verdict.figure}; {ringing}",
                   verdict.detail)  # fmt: skip


def _audit_verdict(name: str, phase: Phase, check: AuditCheck, what: str,
                   extra: dict[str, Any]) -> Verdict:  # fmt: skip
    ok = (phase.failed == 0 and check.missing_after == 0 and check.verified
          and check.calls >= phase.load.calls)  # fmt: skip
    figure = (f"{what}; CEL {check.calls} calls, {check.missing_before} calls/legs short "
              f"before reconcile, {check.backfilled} events backfilled, {check.missing_after} "
              f"missing after; chain verified: {check.verified}; SIP failures {phase.failed}")
    return Verdict(name, ok, figure, {**phase.as_dict(), "audit": check.as_dict(), **extra})


def _outage(ctx: Context, name: str, centre: Centre, down: Callable[[], None],
            up: Callable[[], object]) -> Verdict:  # fmt: skip
    """Calls flow while the database is away for the outage; nothing may be lost."""
    outage_s = 10.0 if ctx.quick else 30.0
    load = Load(rate=2, calls=int(2 * (outage_s + 10)), hold_s=4, key_share=1.0, audio=False)
    service = centre.serve("serve").ready(READY_S)
    calls = Calls(centre, load, ctx.workdir, f"{name}-calls").start()
    _started(calls, 6)
    down()
    try:
        # The fault's duration is the point of the drill: nothing to wait for but the clock.
        time.sleep(outage_s)
    finally:
        up()
    back = datetime.now(UTC)
    phase = calls.wait()
    spool = centre.root / "audit-spool.jsonl"
    wait_until(lambda: not spool.exists() or spool.stat().st_size == 0, READY_S,
               "the audit spool to drain")  # fmt: skip
    replays = service.events("audit.spool_replayed")
    drained_s = ((datetime.fromisoformat(replays[-1]["timestamp"]) - back).total_seconds()
                 if replays else None)  # fmt: skip
    spooled = len(service.events("audit.commit_failed"))
    service.stop()  # drains the writer into the database, as a shift change would
    check = audit_check(centre, load.calls, repair=False)
    ok = (phase.failed == 0 and spooled > 0 and check.missing_before == 0 and check.verified
          and check.calls >= load.calls)  # fmt: skip
    drained = f"{drained_s:.1f} s" if drained_s is not None else "never"
    figure = (f"database away {outage_s:.0f} s under {load.rate:g} calls/s: {spooled} commits "
              f"failed and went to the spool, replayed {drained} after the database came back;"
              f" CEL {check.calls} calls, {check.missing_before} calls/legs "
              f"missing (no reconcile run); chain verified: {check.verified}; SIP failures "
              f"{phase.failed}")  # fmt: skip
    return Verdict(name, ok, figure, {**phase.as_dict(), "audit": check.as_dict(),
                                      "outage_s": outage_s, "failed_commits": spooled,
                                      "replayed_after_s": drained_s})


def db_stop(ctx: Context) -> Verdict:
    """PostgreSQL (a throw-away cluster of our own) stopped under load."""
    with Cluster() as cluster, ctx.centre("db-stop", database_url=cluster.url) as centre:
        return _outage(ctx, "db-stop", centre, cluster.stop, cluster.start)


def db_lock(ctx: Context) -> Verdict:
    """SQLite: another connection holds the exclusive lock, so every commit fails."""
    with ctx.centre("db-lock") as centre:
        lock = faults.SqliteLock(centre.root / "telephony.db")
        return _outage(ctx, "db-lock", centre, lock.acquire, lock.release)


def _booted(centre: Centre) -> bool:
    try:
        return "fully booted" in centre.asterisk.cli("core waitfullybooted", timeout=5)
    except AsteriskError:
        return False


def _restart_gracefully(centre: Centre) -> str:
    """``core restart gracefully``: no new calls, the current ones end, then a fresh start.

    Asterisk restarts by exec'ing its own binary, which the provisioned sandbox tree cannot
    survive (it runs through the tree's own dynamic loader); there the same sequence is
    ``core stop gracefully`` and a new start. A system Asterisk restarts itself."""
    if len(centre.install.command) == 1:
        centre.asterisk.cli("core restart gracefully", timeout=RESTART_S)
        return "core restart gracefully"
    # The command returns once Asterisk has exited, i.e. after the last call ended.
    centre.asterisk.cli("core stop gracefully", timeout=RESTART_S)
    centre.asterisk.stop()  # reaps the exited process
    centre.asterisk.start(centre.config.asterisk.boot_timeout_s)
    return "core stop gracefully, then start (the sandbox tree cannot re-exec itself)"


def restart(ctx: Context) -> Verdict:
    """Calls up during a graceful restart complete, Asterisk comes back, the service logs
    back in and restores the operators by itself, and a new call rings one."""
    load = Load(rate=2, calls=ctx.sized(4, 10), hold_s=8, key_share=1.0, audio=False)
    with ctx.centre("restart") as centre:
        service = centre.serve("serve").ready(READY_S)
        calls = Calls(centre, load, ctx.workdir, "restart-calls").start()
        wait_until(lambda: len(calls.timeline().answered) >= load.calls, READY_S, "calls up")
        asked = time.monotonic()
        how = _restart_gracefully(centre)
        phase = calls.wait()
        wait_until(lambda: _booted(centre), RESTART_S, "Asterisk back after the restart")
        booted_s = time.monotonic() - asked
        service.wait_for("presence.restored", READY_S, after=1)
        back_s = time.monotonic() - asked
        probe = Calls(centre, Load(rate=1, calls=1, hold_s=3, key_share=1.0, audio=False),
                      ctx.workdir, "restart-probe").start().wait()  # fmt: skip
    done = phase.counts.successful if phase.counts else 0
    ok = phase.failed == 0 and done == load.calls
    probe_ok = probe.failed == 0 and probe.unrung == 0 and probe.answered == 1
    figure = (f"{how}: {done}/{load.calls} calls up completed; Asterisk booted again "
              f"{booted_s:.1f} s after the restart was asked, the service logged in and "
              f"restored the operators at {back_s:.1f} s; next call rang an operator: {probe_ok}")
    return Verdict("restart", ok and probe_ok, figure,
                   {**phase.as_dict(), "booted_s": booted_s, "reconnected_s": back_s})
