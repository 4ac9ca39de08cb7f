"""Handset fixes on the console: matched to live calls, shown on their cards, listed for
supervisors while unmatched, and entered into the audit chain.

The receiver (telephony.aml.receiver, in this process on its own port and thread) hands
every stored fix to :meth:`HandsetDesk.received`; the board thread tells it when a call's
number is known (:meth:`call_numbered`). Both only queue work: one ``console-aml`` thread
matches, updates the table, sends the audit UserEvent and publishes the card, so neither the
AMI reader, the board thread nor an HTTP request waits on the database or AMI for it. A fix no
call claims on arrival, or one refused, is chained at once under no call by a second thread
(``console-aml-audit``), so a flood of them never delays a matched fix's card; if a call claims
it later, it is chained again with the call's ids.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy.exc import SQLAlchemyError

from telephony.ami import AMIError
from telephony.aml import store
from telephony.aml.audit import fix_event
from telephony.aml.matching import CallWindow, call_for, waiting_for
from telephony.aml.routing import decide, position
from telephony.aml.store import Stored
from telephony.config import AMLConfig
from telephony.console.auth import WebSession, current
from telephony.console.live import Hub
from telephony.console.schema import HandsetFix
from telephony.contract import Var

log = structlog.get_logger(__name__)
_Job = tuple[str, Stored | str, str]


def _model(fix: Stored) -> HandsetFix:
    return HandsetFix(id=fix.id, lat=fix.lat or 0.0, lon=fix.lon or 0.0,
                      accuracy_m=fix.accuracy_m or 0.0, fixed_at=fix.fixed_at or 0.0,
                      received_at=fix.received_at, method=fix.method, transport=fix.transport,
                      sender=fix.sender, number=fix.number, routed_to=fix.routed_to)


class HandsetDesk:
    def __init__(self, config: AMLConfig, hub: Hub, clock: Callable[[], float] = time.time,
                 queues: Iterable[str] = ()) -> None:
        self._config = config
        self._queues = frozenset(queues)  # the deployment's queues (none: never route)
        self._routed: set[str] = set()  # calls moved once already
        self._hub = hub
        self._clock = clock
        self._lock = threading.Lock()
        self._by_call: dict[str, Stored] = {}  # linkedid -> the newest fix
        self._waiting: dict[int, tuple[Stored, str]] = {}  # unmatched usable fixes and raw
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="console-aml", daemon=True)
        self._unclaimed: queue.Queue[dict[str, str] | None] = queue.Queue()
        self._auditor = threading.Thread(target=self._chain_unclaimed, name="console-aml-audit",
                                         daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._auditor.start()

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(5)
        self._unclaimed.put(None)
        self._auditor.join(5)

    # called from other threads ------------------------------------------------
    def received(self, fix: Stored, raw: str) -> None:
        self._jobs.put(("fix", fix, raw))

    def call_numbered(self, linkedid: str) -> None:
        self._jobs.put(("call", linkedid, ""))

    def card_fix(self, linkedid: str) -> HandsetFix | None:
        with self._lock:
            fix = self._by_call.get(linkedid)
        return _model(fix) if fix is not None else None

    def unmatched(self) -> list[HandsetFix]:
        self._expire()
        with self._lock:
            return [_model(f) for f, _ in sorted(self._waiting.values(), key=lambda w: -w[0].id)]

    # the console-aml thread ------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=1.0)
            except queue.Empty:
                self._expire()
                continue
            if job is None:
                return
            try:
                if job[0] == "fix" and isinstance(job[1], Stored):
                    self._fix(job[1], job[2])
                elif isinstance(job[1], str):
                    self._call(job[1])
            except Exception:  # one odd fix must not end the handset view
                log.exception("console.aml_failed", job=job[0])

    def _windows(self) -> list[CallWindow]:
        with self._hub._lock:
            return [CallWindow(c.linkedid, c.number, c.arrived_at, c.ended_at)
                    for c in self._hub.board.calls() if c.number]

    def _fix(self, fix: Stored, raw: str) -> None:
        linkedid = None
        if not fix.rejected:
            linkedid = call_for(fix.number, fix.received_at, self._windows(),
                                self._config.window_before_s, self._config.window_after_s)
        if linkedid is None:
            # Chained now under no call (issue 17: matched or not, it is audit-chained).
            self._unclaimed.put(fix_event(fix, raw))
            if not fix.rejected:
                with self._lock:
                    self._waiting[fix.id] = (fix, raw)
            return
        fix = self._attach(fix, linkedid)
        self._audit(fix_event(fix, raw))
        self._hub.publish_call(linkedid)
        self._route(fix, linkedid)

    def _call(self, linkedid: str) -> None:
        with self._hub._lock:
            call = self._hub.board.get(linkedid)
            window = CallWindow(call.linkedid, call.number, call.arrived_at,
                                call.ended_at) if call is not None else None
        if window is None or not window.number:
            return
        with self._lock:
            found = [(f, raw) for f, raw in self._waiting.values() if f.number == window.number
                     and waiting_for(window, f.received_at, self._config.window_before_s)]
            for fix, _ in found:
                del self._waiting[fix.id]
        attached = [self._attach(fix, linkedid) for fix, _ in sorted(found, key=lambda w: w[0].id)]
        for fix, (_, raw) in zip(attached, sorted(found, key=lambda w: w[0].id), strict=True):
            self._audit(fix_event(fix, raw))
        if attached:
            self._hub.publish_call(linkedid)
            self._route(max(attached, key=lambda f: f.fixed_at or 0), linkedid)

    def _route(self, fix: Stored, linkedid: str) -> None:
        """Move a waiting caller to the regency their handset puts them in (routing.py)."""
        if fix.lat is None or fix.lon is None or fix.accuracy_m is None:
            return
        with self._hub._lock:
            call = self._hub.board.get(linkedid)
            if call is None or not call.channel or linkedid in self._routed:
                return
            channel, arrived_at, phase = call.channel, call.arrived_at, call.phase
            current = call.regency_code
            arrivals = {c.linkedid: c.arrived_at for c in self._hub.board.calls()}
        move = decide(fix.lat, fix.lon, fix.accuracy_m, current, phase, self._hub.regions,
                      self._queues, self._config.route_accuracy_m)
        if move is None:
            return
        self._routed.add(linkedid)
        ami = self._hub.ami
        try:
            status = ami.send_list_action("QueueStatus", Queue=move.queue)
            now = self._clock()
            waiting = {}
            for entry in status.events:
                if entry.event == "QueueEntry" and entry.get("Uniqueid") != linkedid:
                    uniqueid = entry.get("Uniqueid") or ""
                    wait = float(entry.get("Wait") or 0)
                    waiting[uniqueid] = arrivals.get(uniqueid, now - wait)
            place = position(arrived_at, waiting)
            for name, value in ((Var.AML_QUEUE, move.queue), (Var.AML_REGENCY, move.regency_code),
                                (Var.AML_POSITION, str(place)), (Var.AML_FIX, str(fix.id))):
                ami.send_action("Setvar", Channel=channel, Variable=name.value, Value=value)
            ami.send_action("Redirect", Channel=channel, Context="aml-112", Exten="move",
                            Priority="1")
        except AMIError as exc:
            log.warning("console.aml_route_failed", linkedid=linkedid, fix=fix.id,
                        queue=move.queue, error=str(exc))
            return
        log.info("console.aml_routed", linkedid=linkedid, fix=fix.id, queue=move.queue,
                 position=place)
        try:
            store.routed(self._hub.engine, fix.id, move.queue)
        except SQLAlchemyError as exc:
            log.warning("console.aml_route_not_stored", fix=fix.id, error=str(exc)[:200])
        with self._lock:
            shown = self._by_call.get(linkedid)
            if shown is not None and shown.id == fix.id:
                self._by_call[linkedid] = Stored(**{**shown.__dict__, "routed_to": move.queue})
        self._hub.publish_call(linkedid)

    def _attach(self, fix: Stored, linkedid: str) -> Stored:
        fix = Stored(**{**fix.__dict__, "linkedid": linkedid})
        # The table first: what the card shows, `calls show` already has.
        try:
            store.match(self._hub.engine, fix.id, linkedid, self._clock())
        except SQLAlchemyError as exc:
            log.warning("console.aml_match_not_stored", fix=fix.id, linkedid=linkedid,
                        error=str(exc)[:200])
        with self._hub._lock:
            known = {c.linkedid for c in self._hub.board.calls()}
        with self._lock:
            newest = self._by_call.get(linkedid)
            if newest is None or (fix.fixed_at or 0) >= (newest.fixed_at or 0):
                self._by_call[linkedid] = fix
            for stale in [k for k in self._by_call if k not in known and k != linkedid]:
                del self._by_call[stale]
        log.info("console.aml_matched", fix=fix.id, linkedid=linkedid)
        return fix

    def _chain_unclaimed(self) -> None:
        while (headers := self._unclaimed.get()) is not None:
            self._audit(headers)

    def _audit(self, headers: dict[str, str]) -> None:
        try:
            self._hub.ami.send_action("UserEvent", **headers)  # type: ignore[arg-type]
        except AMIError as exc:
            # The row is in aml_fixes either way; the chain misses this one (docs/aml.md).
            log.warning("console.aml_not_audited", fix=headers.get("FixId"), error=str(exc))

    def _expire(self) -> None:
        oldest = self._clock() - self._config.window_before_s
        with self._lock:
            for fix_id in [i for i, (f, _) in self._waiting.items() if f.received_at < oldest]:
                del self._waiting[fix_id]


router = APIRouter(prefix="/api")


@router.get("/aml/unmatched", response_model=list[HandsetFix])
def unmatched(request: Request,
              session: Annotated[WebSession, Depends(current)]) -> list[HandsetFix]:
    """Fixes no call has claimed yet (a caller may have been cut off): supervisors only."""
    if not session.viewer.supervisor:
        raise HTTPException(403, "supervisors only")
    desk: HandsetDesk | None = request.app.state.hub.handset
    return desk.unmatched() if desk is not None else []
