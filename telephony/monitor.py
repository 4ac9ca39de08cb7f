"""What only AMI events and AGI sessions can tell, for /metrics: calls in progress, callers
and operators per queue, answer times, AGI command latency.

:meth:`Monitor.observe` runs on the AMI reader thread, so it only updates dicts under a lock.
Events missed while AMI was away would leave the gauges wrong for good (a caller who left
during the outage would wait forever), so every AMI session marks the monitor stale, and the
next scrape rebuilds it from ``CoreShowChannels`` and ``QueueStatus`` (the health server's
``resync``). A session shows as its ``FullyBooted`` event, which Asterisk sends each new
session once all its modules are loaded (and not on reloads): the rebuild cannot race a
booting app_queue.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram

from telephony.agi.timings import CommandTimings
from telephony.ami import Frame, ListResult

# The operator changes, which the audit does not ask AMI for; manager_112.conf must let them
# through (contract.AMI_EVENTS) or operators only show up at the resync after each login.
MONITORED_EVENTS = ("QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause")
_CHANNEL_EVENTS = frozenset({"Newchannel", "Hangup"})
_QUEUE_EVENTS = frozenset(
    {"QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", *MONITORED_EVENTS}
)
_OBSERVED = _CHANNEL_EVENTS | _QUEUE_EVENTS | {"AgentConnect", "FullyBooted"}
# Answer times cluster around the queue alert (15 s); AGI commands range from a variable read
# (ms) to a whole prompt played (seconds).
ANSWER_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0)
AGI_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class QueueState:
    callers: int
    longest_wait_s: float
    available: int
    paused: int


@dataclass(frozen=True)
class Snapshot:
    calls: int
    queues: dict[str, QueueState]
    ami_sessions: int


def _field(frame: Frame, key: str) -> str:
    return frame.get(key) or ""


def _stamp(frame: Frame) -> int:
    return frame.received_ns or time.time_ns()


def _cutoff(result: ListResult) -> int:
    return (result.complete or result.response).received_ns


class _ObservedTimings(CommandTimings):
    """The AGI server's timings, also counted into a cumulative Prometheus histogram: the
    sample window alone cannot give counters that only ever grow."""

    def __init__(self, histogram: Histogram) -> None:
        super().__init__()
        self._histogram = histogram

    def record(self, command: str, seconds: float) -> None:
        super().record(command, seconds)
        self._histogram.labels(command.strip().upper()).observe(seconds)


class Monitor:
    """Gauges kept from AMI events; ``agi_timings`` goes to ``FastAGIServer(timings=...)``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._answer = Histogram(
            "telephony_answer_seconds",
            "From the caller's channel appearing to an operator connected (per Linkedid)",
            buckets=ANSWER_BUCKETS,
            registry=self.registry,
        )
        self.agi_timings: CommandTimings = _ObservedTimings(
            Histogram(
                "telephony_agi_command_seconds",
                "Round trip of one AGI command (playing commands include the prompt)",
                ["command"],
                buckets=AGI_BUCKETS,
                registry=self.registry,
            )
        )
        self._lock = threading.Lock()
        self._channels: dict[str, set[str]] = {}  # linkedid -> uniqueids
        self._started: dict[str, int] = {}  # linkedid -> ns the caller's channel appeared
        self._waiting: dict[str, dict[str, int]] = {}  # queue -> uniqueid -> ns joined
        self._members: dict[str, dict[str, bool]] = {}  # queue -> interface -> paused
        self._queues: set[str] = set()
        self._sessions = 0
        self._stale = False
        self._journal: list[Frame] | None = None

    def observe(self, frame: Frame) -> None:
        """Chain into ``AMIConnection(on_event=...)``: only dict updates under a lock."""
        name = frame.event
        if name not in _OBSERVED:
            return
        answered: float | None = None
        with self._lock:
            if name == "FullyBooted":
                self._sessions += 1
                self._stale = True
                return
            if self._journal is not None:
                self._journal.append(frame)
            self._apply(frame)
            linkedid = _field(frame, "Linkedid")
            if name == "Newchannel" and frame.get("Uniqueid") == linkedid:
                self._started[linkedid] = _stamp(frame)
            elif name == "AgentConnect" and linkedid in self._started:
                answered = (_stamp(frame) - self._started.pop(linkedid)) / 1e9
        if answered is not None:
            self._answer.observe(max(0.0, answered))

    @property
    def stale(self) -> bool:
        with self._lock:
            return self._stale

    def begin_resync(self) -> int:
        """Start journaling events; the returned generation goes to ``finish_resync``."""
        with self._lock:
            self._journal = []
            return self._sessions

    def abort_resync(self) -> None:
        with self._lock:
            self._journal = None

    def finish_resync(self, generation: int, channels: ListResult, queues: ListResult) -> None:
        """Replace the gauges with Asterisk's lists, then replay what arrived after each."""
        live: dict[str, set[str]] = {}
        for frame in channels.events:
            live.setdefault(_field(frame, "Linkedid"), set()).add(_field(frame, "Uniqueid"))
        queue_cut = _cutoff(queues)
        names: set[str] = set()
        waiting: dict[str, dict[str, int]] = {}
        members: dict[str, dict[str, bool]] = {}
        for frame in queues.events:
            queue = _field(frame, "Queue")
            names.add(queue)
            if frame.event == "QueueEntry":
                wait_ns = int(_field(frame, "Wait") or 0) * 1_000_000_000
                waiting.setdefault(queue, {})[_field(frame, "Uniqueid")] = queue_cut - wait_ns
            elif frame.event == "QueueMember":
                interface = frame.get("Location") or _field(frame, "Interface")
                members.setdefault(queue, {})[interface] = frame.get("Paused") == "1"
        with self._lock:
            journal, self._journal = self._journal or [], None
            self._channels, self._waiting, self._members = live, waiting, members
            self._queues = names
            self._started = {k: v for k, v in self._started.items() if k in live}
            channel_cut = _cutoff(channels)
            for frame in journal:
                later = _stamp(frame) > (
                    channel_cut if frame.event in _CHANNEL_EVENTS else queue_cut
                )
                if later and frame.event != "AgentConnect":
                    self._apply(frame)
            if self._sessions == generation:
                self._stale = False

    def snapshot(self, now_ns: int | None = None) -> Snapshot:
        now_ns = time.time_ns() if now_ns is None else now_ns
        with self._lock:
            queues = {}
            for name in sorted(self._queues):
                joined = self._waiting.get(name, {}).values()
                paused = self._members.get(name, {}).values()
                queues[name] = QueueState(
                    callers=len(joined),
                    longest_wait_s=max(0.0, (now_ns - min(joined)) / 1e9) if joined else 0.0,
                    available=sum(1 for p in paused if not p),
                    paused=sum(1 for p in paused if p),
                )
            return Snapshot(len(self._channels), queues, self._sessions)

    def _apply(self, frame: Frame) -> None:
        """The state an event changes; idempotent, so a replay over a resync is harmless."""
        name = frame.event
        queue = _field(frame, "Queue")
        if name in _QUEUE_EVENTS:
            self._queues.add(queue)
        if name == "Newchannel":
            self._channels.setdefault(_field(frame, "Linkedid"), set()).add(
                _field(frame, "Uniqueid")
            )
        elif name == "Hangup":
            linkedid = _field(frame, "Linkedid")
            legs = self._channels.get(linkedid, set())
            legs.discard(_field(frame, "Uniqueid"))
            if not legs:
                self._channels.pop(linkedid, None)
                self._started.pop(linkedid, None)
        elif name == "QueueCallerJoin":
            self._waiting.setdefault(queue, {})[_field(frame, "Uniqueid")] = _stamp(frame)
        elif name in ("QueueCallerLeave", "QueueCallerAbandon"):
            self._waiting.get(queue, {}).pop(_field(frame, "Uniqueid"), None)
        elif name in ("QueueMemberAdded", "QueueMemberPause"):
            paused = frame.get("Paused") == "1"
            self._members.setdefault(queue, {})[_field(frame, "Interface")] = paused
        elif name == "QueueMemberRemoved":
            self._members.get(queue, {}).pop(_field(frame, "Interface"), None)
