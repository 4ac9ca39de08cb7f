"""The queue move a handset fix can cause (the decision and the position are pure).

A caller still in the IVR or waiting in a queue (no operator's phone ringing, nobody
answered) whose fix is at least ``route_accuracy_m`` accurate and lies unambiguously in
another launched regency with a queue is moved to that regency's queue. The caller keeps
their place: app_queue's ``position`` argument puts them ahead of every caller in the new
queue who reached the centre later (join_queue inserts at that position among callers of
the same priority; higher-priority callers stay ahead, as they would have anyway).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from telephony.location.region import Regions, queue_name


@dataclass(frozen=True)
class Move:
    regency_code: str
    queue: str


def decide(lat: float, lon: float, accuracy_m: float, current_regency: str, phase: str,
           regions: Regions, queues: Iterable[str], max_accuracy_m: float) -> Move | None:
    if phase not in ("ivr", "queued") or accuracy_m > max_accuracy_m:
        return None
    seat = regions.nearest(lat, lon, accuracy_m)
    if seat is None or seat.ambiguous or not seat.regency.launch:
        return None
    if seat.regency.code == current_regency:
        return None
    queue = queue_name(seat.regency.code)
    return Move(seat.regency.code, queue) if queue in set(queues) else None


def position(arrived_at: float, waiting: Mapping[str, float]) -> int:
    """1 + how many callers in the target queue reached the centre before this one."""
    return 1 + sum(1 for at in waiting.values() if at < arrived_at)
