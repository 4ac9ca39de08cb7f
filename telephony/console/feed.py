"""Numbered live events, kept for replay, with wake-ups for the WebSocket senders.

Every event gets the next sequence number. The last ``capacity`` events are kept, so a client
that reconnects with ``since=N`` receives everything after N; one that fell further behind
is told (``complete`` false) and relies on the snapshot. ``epoch`` changes with every console
start, so a client never mixes numbers from two runs.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

CAPACITY = 10_000


@dataclass(frozen=True)
class Entry:
    seq: int
    kind: str
    data: dict[str, Any]
    # What every client is sent, rendered once (the first sender fills it in).
    cache: dict[str, Any] = field(default_factory=dict, compare=False)


class Feed:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.epoch = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._entries: deque[Entry] = deque(maxlen=capacity)
        self._seq = 0
        self._listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def seq(self) -> int:
        return self._seq

    def publish(self, kind: str, data: dict[str, Any]) -> int:
        """Thread-safe; wakes every listener through its own event loop."""
        with self._lock:
            self._seq += 1
            self._entries.append(Entry(self._seq, kind, data))
            listeners = list(self._listeners)
            seq = self._seq
        for loop, event in listeners:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closing
                self.unsubscribe(loop, event)
        return seq

    def since(self, seq: int) -> tuple[list[Entry], bool]:
        """Entries after ``seq``, and whether none were dropped in between."""
        with self._lock:
            entries = [e for e in self._entries if e.seq > seq]
            oldest = self._entries[0].seq if self._entries else self._seq + 1
        return entries, seq >= oldest - 1

    def subscribe(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        with self._lock:
            self._listeners.add((loop, event))

    def unsubscribe(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        with self._lock:
            self._listeners.discard((loop, event))
