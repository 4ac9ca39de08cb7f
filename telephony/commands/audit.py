"""The audit commands: ``audit verify|reconcile``, ``calls list|show`` and ``stats``.

Every command opens the audit store named by ``audit.database_url`` and brings its schema up
to date first, so on a fresh database the read-only ones report "no calls" instead of failing.
Times are printed in UTC; ``--since`` and ``--until`` take ISO 8601, UTC when no zone is given.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from telephony.aml import store as aml_store
from telephony.audit.checkpoints import checkpoint_key
from telephony.audit.projection import Outcome
from telephony.audit.reconcile import ReconcileReport, cel_path, reconcile
from telephony.audit.report import (
    NENA_TARGETS,
    SERVICE_LEVEL_SECONDS,
    RegencyStats,
    list_calls,
    show_call,
    stats,
)
from telephony.audit.verify import verify
from telephony.audit.views import detail_payload, detail_text, plain, row, seconds, table, when
from telephony.commands.aml import fix_lines
from telephony.config import Config, resolve_path
from telephony.store import open_database

Handler = Callable[[Config, argparse.Namespace], int]
def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextmanager
def _engine(config: Config) -> Iterator[Engine]:
    engine = open_database(config)
    try:
        yield engine
    finally:
        engine.dispose()


def _command(handler: Handler) -> Handler:
    """An unreachable database is one line, not a traceback."""

    @functools.wraps(handler)
    def run(config: Config, args: argparse.Namespace) -> int:
        try:
            return handler(config, args)
        except SQLAlchemyError as exc:
            url = make_url(config.audit.database_url).render_as_string(hide_password=True)
            print(f"telephony: audit database {url}: {exc}", file=sys.stderr)
            return 1

    return run


@_command
def audit_verify(config: Config, args: argparse.Namespace) -> int:
    with _engine(config) as engine:
        report = verify(engine, resolve_path(config.audit.checkpoint_path), checkpoint_key(config))
    if args.json:
        print(json.dumps(plain(asdict(report))))
    elif report.ok:
        print(
            f"audit chain OK: {report.events_checked} events, "
            f"{report.checkpoints_checked} checkpoints verified"
        )
    else:
        problem = report.problem.value if report.problem else "unknown"
        print(f"audit chain BROKEN at seq {report.first_bad_seq}: {problem}: {report.detail}")
    return 0 if report.ok else 1


@_command
def audit_reconcile(config: Config, args: argparse.Namespace) -> int:
    cel = args.cel or cel_path(config)
    spool = resolve_path(config.audit.spool_path)
    if not args.dry_run and spool.exists() and spool.stat().st_size:
        # Backfilling from CEL what the spool still holds would record those events twice.
        print(
            f"telephony: the audit spool {spool} still holds events the database has not taken; "
            "reconcile once `telephony serve` has replayed it (or use --dry-run)",
            file=sys.stderr,
        )
        return 1
    if not cel.is_file():
        print(f"telephony: no CEL file at {cel}", file=sys.stderr)
        return 1
    with _engine(config) as engine:
        report = reconcile(engine, cel, since=args.since, dry_run=args.dry_run)
    if args.json:
        payload = asdict(report)
        payload.update(
            clean=report.clean,
            calls_missing=report.calls_missing,
            legs_missing=report.legs_missing,
            legs_incomplete=report.legs_incomplete,
            events_backfilled=report.events_backfilled,
        )
        print(json.dumps(plain(payload)))
    else:
        print(_reconcile_text(report))
    return 0


def _reconcile_text(report: ReconcileReport) -> str:
    skipped = f" ({report.cel_skipped} unreadable lines skipped)" if report.cel_skipped else ""
    lines = [
        f"CEL: {report.cel_rows} rows{skipped}; {report.calls_checked} finished calls checked, "
        f"{report.calls_in_progress} in progress not judged yet"
    ]
    if report.clean:
        return "\n".join([*lines, "no differences"])
    verb = "would backfill" if report.dry_run else "backfilled"
    events = sum(d.events for d in report.differences)
    lines.append(
        f"differences in {len(report.differences)} calls: {report.calls_missing} calls missing, "
        f"{report.legs_missing} legs missing, {report.legs_incomplete} legs incomplete; "
        f"{verb} {events} events"
    )
    rows = [
        (
            d.linkedid,
            "missing" if d.call_missing else "incomplete",
            ",".join(d.legs_missing) or "-",
            ",".join(d.legs_incomplete) or "-",
            d.events,
        )
        for d in report.differences
    ]
    lines.append(table(("LINKEDID", "CALL", "LEGS MISSING", "LEGS INCOMPLETE", "EVENTS"), rows))
    return "\n".join(lines)


@_command
def calls_list(config: Config, args: argparse.Namespace) -> int:
    outcome = Outcome(args.outcome) if args.outcome else None
    with _engine(config) as engine, Session(engine) as session:
        calls = list_calls(
            session,
            since=args.since,
            until=args.until,
            regency_code=args.regency,
            outcome=outcome,
            limit=args.limit,
        )
        if args.json:
            print(json.dumps(plain([row(call) for call in calls])))
            return 0
    if not calls:
        print("no calls")
        return 0
    header = ("ARRIVED (UTC)", "LINKEDID", "CALLER", "REGENCY", "TYPE", "OUTCOME", "ANSWER S")
    rows = [
        (
            when(c.arrived_at),
            c.linkedid,
            c.caller or "-",
            c.regency_code or "-",
            c.emergency_type or "-",
            c.outcome.value if c.outcome else c.phase,
            seconds(c.answer_seconds),
        )
        for c in calls
    ]
    print(table(header, rows))
    return 0


@_command
def calls_show(config: Config, args: argparse.Namespace) -> int:
    with _engine(config) as engine, Session(engine) as session:
        detail = show_call(session, args.linkedid)
        if detail is None:
            print(f"no call {args.linkedid}", file=sys.stderr)
            return 1
        found = aml_store.fixes(engine, linkedid=args.linkedid)
        if args.json:
            payload = detail_payload(detail)
            if isinstance(payload, dict):
                payload["fixes"] = [asdict(f) for f in found]
            print(json.dumps(payload))
        else:
            print(detail_text(detail))
            if found:
                print("handset fixes (AML):\n  " + "\n  ".join(fix_lines(found)))
    return 0


@_command
def stats_command(config: Config, args: argparse.Namespace) -> int:
    with _engine(config) as engine, Session(engine) as session:
        report = stats(session, since=args.since, until=args.until)
    if args.json:
        print(json.dumps(plain(asdict(report))))
        return 0
    if not report.total.offered:
        print("no calls")
        return 0
    window = f"{when(report.since) if report.since else 'start'} .. "
    window += when(report.until) if report.until else "now"
    header = ("REGENCY", "OFFERED", "ANSWERED", "ABANDONED", "FAILED", "P50 S", "P90 S",
              "P95 S", *(f"<={s:g}S" for s in SERVICE_LEVEL_SECONDS), "NENA")  # fmt: skip
    rows = [_stats_row(r) for r in report.regencies]
    rows.append(_stats_row(report.total, "TOTAL"))
    targets = " and ".join(f"{share:.0%} within {s:g} s" for s, share in NENA_TARGETS)
    print(f"calls arrived {window} (UTC)\n{table(header, rows)}\nNENA: {targets}")
    return 0


def _stats_row(r: RegencyStats, name: str | None = None) -> tuple[object, ...]:
    return (
        name or r.regency_code or "(unknown)",
        r.offered,
        r.answered,
        r.abandoned,
        r.failed,
        seconds(r.answer_p50_s),
        seconds(r.answer_p90_s),
        seconds(r.answer_p95_s),
        *(f"{r.within_s[s]:.0%}" for s in SERVICE_LEVEL_SECONDS),
        "met" if r.meets_nena else "missed",
    )


def _window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=parse_time, metavar="ISO", help="calls arrived from")
    parser.add_argument("--until", type=parse_time, metavar="ISO", help="calls arrived before")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="check and repair the audit trail")
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("verify", help="check the hash chain and signed checkpoints")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=audit_verify)
    rec = actions.add_parser(
        "reconcile", help="compare with Asterisk's CEL and backfill what AMI missed"
    )
    rec.add_argument("--since", type=parse_time, metavar="ISO", help="calls started from")
    rec.add_argument(
        "--cel",
        type=Path,
        metavar="FILE",
        help="CEL CSV (default: <asterisk.runtime_dir>/log/cel-custom/Master.csv)",
    )
    rec.add_argument("--dry-run", action="store_true", help="report, backfill nothing")
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(handler=audit_reconcile)

    calls = sub.add_parser("calls", help="list and show audited calls")
    views = calls.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = views.add_parser("list", help="calls, newest first")
    _window(listing)
    listing.add_argument("--regency", metavar="CODE")
    listing.add_argument("--outcome", choices=[o.value for o in Outcome])
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=calls_list)
    show = views.add_parser("show", help="one call: location, IVR choice, legs and timeline")
    show.add_argument("linkedid")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=calls_show)

    report = sub.add_parser("stats", help="answer times and service levels per regency")
    _window(report)
    report.add_argument("--json", action="store_true")
    report.set_defaults(handler=stats_command)
