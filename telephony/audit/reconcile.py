"""Reconcile the audit trail against CEL, Asterisk's own record, and backfill what AMI missed.

A finished call (CEL has its ``LINKEDID_END``) is compared leg by leg: for each CEL row with an
AMI counterpart (:data:`telephony.audit.cel.AMI_EQUIVALENT`) the audit should hold as many
events of that kind for the leg as CEL has rows. Counting rather than matching times keeps the
comparison independent of the zone CEL's text times are written in. Where the audit has fewer,
the missing rows (the latest ones: an outage cuts a leg's tail) are appended as events through
the normal write path, so they are hash-chained, idempotent and projected like live events,
with ``source='cel-backfill'``; the legs they touch get ``backfilled=True``. A backfilled call
without queueing or answer in the audit takes them from CEL (:func:`~telephony.audit.cel.
call_facts`), and its outcome is decided again when its end or those facts came from CEL.

Calls still in progress are not judged, nor calls that ended less than ``settle_s`` ago, whose
AMI events may still be on their way to the database.

Concurrency: every appender locks the chain tail first (:func:`~telephony.audit.store.
lock_chain`), so a reconcile in another process and the live writer take turns instead of
racing. In the service, reconcile runs on the writer thread itself (:func:`reconcile_on_connect`
through :meth:`~telephony.audit.writer.AuditWriter.submit`), after the spool is replayed. This
never writes checkpoints: only the writer does, or two processes could sign out of order.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Protocol

import structlog
from sqlalchemy import Engine, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from telephony.ami.frames import Frame
from telephony.audit.cel import (
    AMI_EQUIVALENT,
    CallFacts,
    CelCall,
    CelParse,
    CelRecord,
    call_facts,
    dialled,
    group_calls,
    parse_lines,
    to_frame,
)
from telephony.audit.events import EventRecord, record_from_frame
from telephony.audit.models import AuditEvent, Call, CallLeg
from telephony.audit.projection import CallState, LegRole, outcome_of
from telephony.audit.store import ProjectionCache, chunks, columns, lock_chain, write_batch
from telephony.config import Config, resolve_path
from telephony.contract import CHANNEL_STATE_UP
from telephony.pbx.layout import Layout

log = structlog.get_logger(__name__)

SOURCE = "cel-backfill"
# CEL text times are cut to the second: a call is only judged once its end is surely past.
_CEL_RESOLUTION = timedelta(seconds=1)
# Calls per transaction, so the chain lock is never held for long.
_CHUNK = 100


@dataclass(frozen=True)
class CallDifference:
    linkedid: str
    call_missing: bool
    legs_missing: tuple[str, ...]
    """Legs CEL has and ``call_legs`` does not."""
    legs_incomplete: tuple[str, ...]
    """Legs the audit has, but with fewer events than CEL (e.g. no Hangup)."""
    events: int
    """Events backfilled (or, on a dry run, that would be)."""


@dataclass(frozen=True)
class ReconcileReport:
    cel_rows: int
    cel_skipped: int
    calls_checked: int
    calls_in_progress: int
    differences: tuple[CallDifference, ...]
    dry_run: bool = False

    @property
    def clean(self) -> bool:
        return not self.differences

    @property
    def calls_missing(self) -> int:
        return sum(1 for d in self.differences if d.call_missing)

    @property
    def legs_missing(self) -> int:
        return sum(len(d.legs_missing) for d in self.differences)

    @property
    def legs_incomplete(self) -> int:
        return sum(len(d.legs_incomplete) for d in self.differences)

    @property
    def events_backfilled(self) -> int:
        return 0 if self.dry_run else sum(d.events for d in self.differences)


@dataclass(frozen=True)
class _Plan:
    call: CelCall
    difference: CallDifference
    items: tuple[tuple[EventRecord, Frame], ...]

    @property
    def touched(self) -> tuple[str, ...]:
        return self.difference.legs_missing + self.difference.legs_incomplete


class JobRunner(Protocol):
    def submit(self, job: Callable[[], object]) -> None: ...


def read_cel(path: Path, tz: tzinfo | None = None) -> CelParse:
    """Parse the CEL file; a last line without its newline is still being written, so it is
    left for next time. Raises OSError when the file cannot be read."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    return parse_lines(text[: text.rfind("\n") + 1].splitlines(), tz)


def reconcile(
    engine: Engine,
    cel_csv_path: Path,
    *,
    since: datetime | None = None,
    settle_s: float = 5.0,
    now: datetime | None = None,
    tz: tzinfo | None = None,
    dry_run: bool = False,
) -> ReconcileReport:
    """Compare the finished calls in the CEL file (started at ``since`` or later, when given)
    with the audit store and, unless ``dry_run``, backfill what the audit lacks."""
    parsed = read_cel(cel_csv_path, tz)
    return reconcile_records(
        engine, parsed, since=since, settle_s=settle_s, now=now, dry_run=dry_run
    )


def reconcile_records(
    engine: Engine,
    parsed: CelParse,
    *,
    since: datetime | None = None,
    settle_s: float = 5.0,
    now: datetime | None = None,
    dry_run: bool = False,
) -> ReconcileReport:
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=settle_s) - _CEL_RESOLUTION
    window = [c for c in group_calls(parsed.records) if since is None or c.started_at >= since]
    finished = [c for c in window if c.ended_at is not None and c.ended_at <= cutoff]
    differences: list[CallDifference] = []
    for start in range(0, len(finished), _CHUNK):
        chunk = finished[start : start + _CHUNK]
        with Session(engine) as session:
            if dry_run:
                plans = _plans(session, chunk)
            else:
                with session.begin():
                    lock_chain(session)
                    plans = _plans(session, chunk)
                    _backfill(session, plans)
        differences += [plan.difference for plan in plans]
    report = ReconcileReport(
        cel_rows=len(parsed.records),
        cel_skipped=parsed.skipped,
        calls_checked=len(finished),
        calls_in_progress=len(window) - len(finished),
        differences=tuple(differences),
        dry_run=dry_run,
    )
    log.info(
        "audit.reconcile_done",
        calls_checked=report.calls_checked,
        calls_in_progress=report.calls_in_progress,
        calls_missing=report.calls_missing,
        legs_missing=report.legs_missing,
        legs_incomplete=report.legs_incomplete,
        events_backfilled=report.events_backfilled,
        cel_skipped=report.cel_skipped,
        dry_run=dry_run,
    )
    return report


def cel_path(config: Config) -> Path:
    """The CEL CSV to reconcile against: configured, else the sandbox's."""
    if config.audit.cel_path:
        return resolve_path(config.audit.cel_path)
    return Layout(resolve_path(config.asterisk.runtime_dir)).cel_csv


def reconcile_on_connect(
    writer: JobRunner,
    engine: Engine,
    cel_csv_path: Path,
    *,
    settle_s: float = 5.0,
    lookback: timedelta = timedelta(days=1),
) -> Callable[[], None]:
    """An ``AMIConnection(on_connect=...)`` callback: backfill calls that ended while AMI was away.

    It returns at once, since it runs on the AMI supervisor thread. After ``settle_s`` (so the
    events of calls ending around the login arrive first) a timer thread reads the CEL file,
    then hands the database part to the writer thread, which runs it after its spool. Calls that
    started more than ``lookback`` ago are left to ``telephony audit reconcile``.
    """

    def read_and_submit() -> None:
        try:
            parsed = read_cel(cel_csv_path)
        except OSError as exc:
            log.warning("audit.reconcile_skipped", path=str(cel_csv_path), error=str(exc))
            return
        since = datetime.now(UTC) - lookback
        writer.submit(lambda: reconcile_records(engine, parsed, since=since, settle_s=settle_s))

    def on_connect() -> None:
        timer = threading.Timer(settle_s, read_and_submit)
        timer.name = "audit-reconcile"
        timer.daemon = True
        timer.start()

    return on_connect


def _recorded(session: Session, linkedids: Sequence[str]) -> Counter[tuple[str, str]]:
    """How many events of each AMI kind the audit holds per leg: (uniqueid, kind) -> count."""
    kinds = set(AMI_EQUIVALENT.values())
    counts: Counter[tuple[str, str]] = Counter()
    for part in chunks(linkedids):
        rows = session.execute(
            select(AuditEvent.uniqueid, AuditEvent.type, AuditEvent.payload).where(
                AuditEvent.linkedid.in_(part), AuditEvent.type.in_(kinds)
            )
        )
        for uniqueid, kind, payload in rows:
            # Only a Newstate to Up is the counterpart of CEL's ANSWER.
            if kind != "Newstate" or json.loads(payload).get("ChannelState") == CHANNEL_STATE_UP:
                counts[(uniqueid, kind)] += 1
    return counts


def _select_in(
    session: Session,
    wanted: InstrumentedAttribute[str],
    key: InstrumentedAttribute[str],
    values: Sequence[str],
) -> set[str]:
    found: set[str] = set()
    for part in chunks(values):
        found.update(session.scalars(select(wanted).where(key.in_(part))))
    return found


def missing_records(call: CelCall, recorded: Counter[tuple[str, str]]) -> list[CelRecord]:
    """The call's CEL rows the audit lacks, in file order (pure)."""
    missing: list[CelRecord] = []
    for leg in call.legs:
        by_kind: dict[str, list[CelRecord]] = {}
        for record in leg.records:
            kind = AMI_EQUIVALENT.get(record.event_type)
            if kind is not None:
                by_kind.setdefault(kind, []).append(record)
        for kind, rows in by_kind.items():
            lacking = len(rows) - recorded[(leg.uniqueid, kind)]
            if lacking > 0:
                missing += rows[-lacking:]
    order = {id(record): index for index, record in enumerate(call.records)}
    return sorted(missing, key=lambda record: order[id(record)])


def backfill_items(call: CelCall, records: Iterable[CelRecord]) -> list[tuple[EventRecord, Frame]]:
    """Audit records for CEL rows (pure). Each gets the receive stamp of its row's time plus its
    position in the call, so a replay of the same rows derives the same idempotency keys."""
    position = {id(record): index for index, record in enumerate(call.records)}
    items = []
    for record in records:
        stamp = int(record.time.timestamp()) * 1_000_000_000 + record.time.microsecond * 1000
        frame = to_frame(record, stamp + position[id(record)])
        if frame is not None:
            items.append((record_from_frame(frame, SOURCE), frame))
    return items


def _plans(session: Session, calls: Sequence[CelCall]) -> list[_Plan]:
    linkedids = [call.linkedid for call in calls]
    recorded = _recorded(session, linkedids)
    known_calls = _select_in(session, Call.linkedid, Call.linkedid, linkedids)
    known_legs = _select_in(session, CallLeg.uniqueid, CallLeg.linkedid, linkedids)
    plans = []
    for call in calls:
        records = missing_records(call, recorded)
        if not records:
            continue
        touched = {record.uniqueid for record in records}
        legs = [leg.uniqueid for leg in call.legs if leg.uniqueid in touched]
        items = tuple(backfill_items(call, records))
        difference = CallDifference(
            linkedid=call.linkedid,
            call_missing=call.linkedid not in known_calls,
            legs_missing=tuple(uid for uid in legs if uid not in known_legs),
            legs_incomplete=tuple(uid for uid in legs if uid in known_legs),
            events=len(items),
        )
        plans.append(_Plan(call, difference, items))
    return plans


def _backfill(session: Session, plans: Sequence[_Plan]) -> None:
    if not plans:
        return
    ended_before = {
        linkedid
        for linkedid in session.scalars(
            select(Call.linkedid).where(
                Call.linkedid.in_([p.call.linkedid for p in plans]), Call.ended_at.is_not(None)
            )
        )
    }
    write_batch(session, [item for plan in plans for item in plan.items], ProjectionCache(0))
    for plan in plans:
        linkedid = plan.call.linkedid
        row = session.get(Call, linkedid)
        if row is not None:
            state = CallState(
                **{f.name: getattr(row, f.name) for f in dataclasses.fields(CallState)}
            )
            refined = refine(state, call_facts(plan.call), ended_here=linkedid not in ended_before)
            for name, value in columns(refined).items():
                if value != getattr(state, name):
                    setattr(row, name, value)
        for cel_leg in plan.call.legs:
            leg = session.get(CallLeg, cel_leg.uniqueid)
            if leg is None or cel_leg.uniqueid not in plan.touched:
                continue
            leg.backfilled = True
            # Without the DialBegin or AgentCalled that AMI would have given, say what CEL shows.
            if leg.role is LegRole.OTHER and dialled(cel_leg):
                leg.role = LegRole.OPERATOR
        log.info(
            "audit.reconcile_backfilled",
            linkedid=linkedid,
            call_missing=plan.difference.call_missing,
            legs_missing=list(plan.difference.legs_missing),
            legs_incomplete=list(plan.difference.legs_incomplete),
            events=plan.difference.events,
        )


def refine(call: CallState, facts: CallFacts, *, ended_here: bool) -> CallState:
    """Fill queueing and answer from CEL where the audit has none; an ended call whose end came
    from CEL, or that this changed, gets its outcome decided again (pure)."""
    refined = call
    if refined.queued_at is None and facts.queued_at is not None:
        refined = dataclasses.replace(
            refined, queued_at=facts.queued_at, queue=refined.queue or facts.queue
        )
    if refined.answered_at is None and facts.answered_at is not None:
        refined = dataclasses.replace(
            refined,
            answered_at=facts.answered_at,
            answering_operator=facts.answered_by,
            answer_seconds=(facts.answered_at - refined.arrived_at).total_seconds(),
        )
    if refined.ended_at is not None and (ended_here or refined != call):
        refined = dataclasses.replace(refined, outcome=outcome_of(refined, facts.hangup_cause))
    return refined

