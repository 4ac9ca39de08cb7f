"""The console's engine room: its AMI session, the board, the feed, and database lookups.

Threads: the AMI reader only puts frames on a queue (never blocks); one ``console-board``
thread folds them into the :class:`Board` and publishes cards; a small pool looks callers'
histories up in the audit store; a ``console-status`` thread watches the database and AMI and
publishes a status event whenever either changes, so the page can say so in words.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from telephony.ami import AMIConnection, Frame
from telephony.console import history
from telephony.console.board import Board, LiveCall
from telephony.console.feed import Feed
from telephony.console.schema import Card, Location, Nuisance, Status
from telephony.console.schema import Hop as HopModel
from telephony.location.region import Regions
from telephony.operators.roster import Operator, memberships

if TYPE_CHECKING:
    from telephony.console.handset import HandsetDesk

log = structlog.get_logger(__name__)

STATUS_INTERVAL_S = 1.0
_RESYNC = Frame([("Event", "ConsoleResync")])


@dataclass(frozen=True)
class Viewer:
    """Who looks: a supervisor sees the province; an operator their regency and overflow."""

    name: str
    supervisor: bool
    operator_id: str | None = None
    regency_code: str | None = None
    queues: frozenset[str] = frozenset()
    # An agency user (role agency): sees no calls, only the incidents handed to this agency.
    agency_id: str | None = None


def viewer_for(name: str, supervisor: bool, op: Operator | None, regions: Regions) -> Viewer:
    if supervisor or op is None:
        return Viewer(name, supervisor)
    return Viewer(name, False, op.id, op.regency, frozenset(memberships(op, regions)))


def can_see(viewer: Viewer, card: Card) -> bool:
    if viewer.supervisor:
        return True
    if viewer.operator_id is None:
        return False
    return (card.regency_code == viewer.regency_code
            or viewer.operator_id in card.offered
            or any(hop.queue in viewer.queues for hop in card.hops))


class Hub:
    def __init__(self, engine: Engine, regions: Regions, roster: tuple[Operator, ...],
                 ami_factory: Callable[[Callable[[Frame], None], Callable[[], None]],
                                       AMIConnection]) -> None:
        self.engine = engine
        self.regions = regions
        self.roster = {op.id: op for op in roster}
        self.feed = Feed()
        self.board = Board({op.interface: op.id for op in roster})
        self._frames: queue.Queue[Frame | None] = queue.Queue()
        self._lock = threading.Lock()  # board and history cache, shared with the API
        self._history: dict[str, tuple[list[Any], Nuisance]] = {}
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="console-db")
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run_board, name="console-board",
                                          daemon=True),
                         threading.Thread(target=self._run_status, name="console-status",
                                          daemon=True)]
        self.status = Status(database=False, ami=False)
        # Handset fixes (AML), when the receiver is on: telephony.console.handset.
        self.handset: HandsetDesk | None = None
        self.ami = ami_factory(self._frames.put, lambda: self._frames.put(_RESYNC))

    # lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self._check_database()
        for thread in self._threads:
            thread.start()
        self.ami.start()

    def stop(self) -> None:
        self._stop.set()
        self._frames.put(None)
        self.ami.stop()
        for thread in self._threads:
            thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # reading -----------------------------------------------------------------
    def cards(self, viewer: Viewer) -> list[Card]:
        with self._lock:
            cards = [self._card(call) for call in self.board.calls()]
        return [card for card in cards if can_see(viewer, card)]

    def card(self, linkedid: str) -> Card | None:
        with self._lock:
            call = self.board.get(linkedid)
            return self._card(call) if call is not None else None

    def _card(self, call: LiveCall) -> Card:
        regency = self.regions.regencies.get(call.regency_code)
        location = None
        if call.lat is not None and call.lon is not None and call.location_kind != "none":
            location = Location(lat=call.lat, lon=call.lon, radius_m=call.radius_m,
                                source=call.location_source,
                                kind="handset" if call.location_kind == "handset" else "network",
                                cell_id=call.cell_id)
        found = self._history.get(call.linkedid)
        return Card(
            linkedid=call.linkedid, arrived_at=call.arrived_at, phase=call.phase,
            number=call.number or call.raw_number, number_kind=call.number_kind,  # type: ignore[arg-type]
            emergency_type=call.emergency_type, language=call.language,
            regency_code=call.regency_code, regency_name=regency.name if regency else "",
            method=call.method, confidence=call.confidence, location=location,
            hops=[HopModel(queue=h.queue, at=h.at, reason=h.reason) for h in call.hops],
            ringing=sorted(call.ringing), offered=sorted(call.offered),
            answered_by=call.answered_by, ended_at=call.ended_at,
            classification=call.classification,  # type: ignore[arg-type]
            history=found[0] if found else None, nuisance=found[1] if found else None,
            handset=self.handset.card_fix(call.linkedid) if self.handset else None,
        )

    def operator_channel(self, linkedid: str, operator_id: str) -> str | None:
        with self._lock:
            call = self.board.get(linkedid)
            return call.channels.get(operator_id) if call is not None else None

    # the board thread ----------------------------------------------------------
    def _run_board(self) -> None:
        while True:
            frame = self._frames.get()
            if frame is None:
                return
            try:
                if frame is _RESYNC:
                    self._pool.submit(self._resync)
                    continue
                self._fold(frame)
            except Exception:  # one odd event must not end the console's live view
                log.exception("console.event_failed", event=frame.event)

    def _fold(self, frame: Frame) -> None:
        with self._lock:
            linkedid = self.board.apply(frame)
            call = self.board.get(linkedid) if linkedid else None
            want_history = (call is not None and call.number and call.ended_at is None
                            and linkedid not in self._history and frame.event == "UserEvent"
                            and frame.get("UserEvent") == "IVRLocation")
        if call is None:
            return
        if want_history:
            self._pool.submit(self._look_up, call.linkedid, call.number)
            if self.handset is not None:
                self.handset.call_numbered(call.linkedid)
        self.publish_call(call.linkedid)

    def classified(self, linkedid: str, category: str, note: str, user: str) -> None:
        """Asterisk took the audit record. Our own session never sees that UserEvent (the
        client routes frames with our ActionID to the waiting action), so apply it here."""
        with self._lock:
            call = self.board.get(linkedid)
            if call is None:
                return
            call.classification = {"category": category, "note": note, "by": user}
        self.publish_call(linkedid)

    def publish_call(self, linkedid: str) -> None:
        card = self.card(linkedid)
        if card is not None:
            self.feed.publish("call", {"call": card})

    def _look_up(self, linkedid: str, number: str) -> None:
        try:
            found = history.caller_history(self.engine, number, linkedid)
        except SQLAlchemyError as exc:
            log.warning("console.history_failed", linkedid=linkedid, error=str(exc))
            return
        with self._lock:
            self._history[linkedid] = found
            known = {c.linkedid for c in self.board.calls()}
            for stale in [k for k in self._history if k not in known]:
                del self._history[stale]
        self.publish_call(linkedid)

    def _resync(self) -> None:
        """After an AMI (re)connection: learn the calls the store has and we missed."""
        try:
            stored = history.recent_calls(self.engine)
        except SQLAlchemyError as exc:
            log.warning("console.resync_failed", error=str(exc))
            return
        changed = []
        with self._lock:
            for call in stored:
                if self.board.get(call.linkedid) is None:
                    self.board.adopt(call)
                    changed.append(call.linkedid)
                elif call.ended_at is not None and self.board.end(call.linkedid, call.ended_at):
                    changed.append(call.linkedid)
        for linkedid in changed:
            self.publish_call(linkedid)
        log.info("console.resynced", calls=len(changed))

    # the status thread ---------------------------------------------------------
    def _check_database(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def _run_status(self) -> None:
        while not self._stop.is_set():
            current = Status(database=self._check_database(), ami=self.ami.connected)
            if current != self.status:
                log.info("console.status", database=current.database, ami=current.ami)
                self.status = current
                self.feed.publish("status", {"status": current})
            self._stop.wait(STATUS_INTERVAL_S)
