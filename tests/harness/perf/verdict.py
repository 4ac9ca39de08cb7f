"""What every drill shares: its context, its verdict, and the audit check against CEL.

The audit check uses the operator's own commands, as a shift supervisor would after an
incident: ``telephony audit reconcile --dry-run`` (what is missing, compared with CEL),
``telephony audit reconcile`` (backfill), the dry run again (nothing may be missing now) and
``telephony audit verify`` (the hash chain and its signed checkpoints).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telephony.config import Config, as_set_flags
from telephony.pbx.provision import AsteriskInstall
from tests.harness.perf.centre import Centre, Staff
from tests.harness.service import clean_env

COMMAND_TIMEOUT_S = 120.0
SETTLE_TIMEOUT_S = 90.0
# Drills ring few operators, quickly, so that a queue that rings one caller at a time
# still reaches everyone within the hold.
DRILL_STAFF = Staff(count=30, answer_ms=300, wrapup_s=1)


@dataclass(frozen=True)
class Context:
    install: AsteriskInstall
    workdir: Path
    quick: bool
    calls: int | None = None
    """Calls per drill, instead of the quick or full count."""
    direct: bool = False
    """No SIP edge: the trunk's callers send to Asterisk itself (scripts/drill --direct)."""

    def sized(self, quick: int, full: int) -> int:
        if self.calls is not None:
            return self.calls
        return quick if self.quick else full

    def centre(self, name: str, *, database_url: str | None = None,
               staff: Staff = DRILL_STAFF, overrides: Sequence[str] = ()) -> Centre:  # fmt: skip
        return Centre(self.install, self.workdir / name, staff, database_url=database_url,
                      overrides=overrides, direct=self.direct)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    name: str
    passed: bool
    figure: str
    detail: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.figure}"


class DrillError(Exception):
    """A drill could not be carried out (not a failed verdict: the harness itself failed)."""


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll_s: float = 0.2) -> float:
    """Seconds until ``check`` holds; raises DrillError at the deadline. For conditions that
    have no event to wait on (a file growing, a count in a CLI report)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise DrillError(f"{what}: not within {timeout:.0f}s")
        time.sleep(poll_s)
    return time.monotonic() - started


def telephony(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    """One `telephony` command against ``config``, as an operator runs it."""
    argv = [sys.executable, "-m", "telephony.cli", "--log-format", "json",
            *as_set_flags(config), *args]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, env=clean_env(),
                          timeout=COMMAND_TIMEOUT_S, check=False)  # fmt: skip


def _json(done: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    try:
        value = json.loads(done.stdout)
    except ValueError as exc:
        raise DrillError(f"{what} (exit {done.returncode}): {done.stdout}{done.stderr}") from exc
    if not isinstance(value, dict):
        raise DrillError(f"{what}: unexpected output {done.stdout!r}")
    return value


def reconcile(config: Config, *, dry_run: bool) -> dict[str, Any]:
    args = ["audit", "reconcile", "--json", *(["--dry-run"] if dry_run else [])]
    return _json(telephony(config, *args), "telephony audit reconcile")


def verified(config: Config) -> bool:
    return bool(_json(telephony(config, "audit", "verify", "--json"), "audit verify").get("ok"))


@dataclass(frozen=True)
class AuditCheck:
    calls: int
    missing_before: int
    """Calls and legs CEL has that the audit lacked, before any reconcile."""
    backfilled: int
    """Events the reconcile command added."""
    missing_after: int
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "missing_before": self.missing_before,
                "backfilled": self.backfilled, "missing_after": self.missing_after,
                "verified": self.verified}  # fmt: skip


def _missing(report: dict[str, Any]) -> int:
    keys = ("calls_missing", "legs_missing", "legs_incomplete")
    return sum(int(report.get(k, 0)) for k in keys)


def audit_check(centre: Centre, calls: int, *, repair: bool) -> AuditCheck:
    """Compare the audit with CEL once every call has ended and settled in CEL; repair with
    reconcile when asked, then check that nothing is missing and the chain verifies."""
    config = centre.config
    report: dict[str, Any] = {}

    def settled() -> bool:
        report.update(reconcile(config, dry_run=True))
        return int(report["calls_checked"]) >= calls and int(report["calls_in_progress"]) == 0

    wait_until(settled, SETTLE_TIMEOUT_S, f"CEL never showed {calls} finished calls", 1.0)
    before = dict(report)
    backfilled = 0
    if repair:
        backfilled = int(reconcile(config, dry_run=False).get("events_backfilled", 0))
    after = reconcile(config, dry_run=True) if repair else before
    return AuditCheck(
        calls=int(before["calls_checked"]),
        missing_before=_missing(before),
        backfilled=backfilled,
        missing_after=_missing(after),
        verified=verified(config),
    )
