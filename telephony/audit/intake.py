"""The bounded hand-over from the AMI reader to the audit writer.

The reader must never wait for the writer, and no frame may be dropped. So ``put`` never
blocks: while the in-memory queue has room a frame goes there; once it is full, frames (and
everything after them, to keep arrival order) are appended to an overflow file, fsynced like
the spool, until the writer has read that file back to its end. The writer takes the queue
first, then the overflow, so it sees frames in the order the reader put them. Frames left
in the overflow by a crash are served first at the next start.
"""

from __future__ import annotations

import collections
import json
import queue
import threading
from pathlib import Path

from telephony.ami.frames import Frame
from telephony.ami.identity import Quarantined
from telephony.audit.events import canonical_json
from telephony.audit.files import append_lines, cut_torn_tail

Item = Frame | Quarantined
_READ_LINES = 500


def encode(item: Item) -> str:
    if isinstance(item, Frame):
        return canonical_json(
            {"fields": [list(p) for p in item.fields], "received_ns": item.received_ns}
        )
    return canonical_json({
        "quarantine": item.reason,
        "linkedid": item.linkedid,
        "parts": [{"fields": [list(p) for p in part.fields], "received_ns": part.received_ns}
                  for part in item.parts],
    })  # fmt: skip


def _frame(data: dict[str, object]) -> Frame:
    fields = data["fields"]
    assert isinstance(fields, list)
    received = data["received_ns"]
    assert isinstance(received, int)
    return Frame([(str(k), str(v)) for k, v in fields], received)


def decode(line: bytes) -> Item:
    data = json.loads(line)
    if "quarantine" in data:
        parts = tuple(_frame(part) for part in data["parts"])
        return Quarantined(parts, str(data["quarantine"]), str(data["linkedid"]))
    return _frame(data)


def _decode_or_quarantine(line: bytes) -> Item:
    try:
        return decode(line)
    except (ValueError, KeyError, TypeError, AssertionError):
        text = line.decode("utf-8", errors="replace").rstrip("\n")
        return Quarantined((Frame([("Line", text)]),), "unreadable-overflow-line")


class Intake:
    """``put`` from the reader (and the recording sealer); ``get``/``get_nowait`` by the writer."""

    def __init__(self, overflow_path: Path, maxsize: int) -> None:
        self._queue: queue.Queue[Item] = queue.Queue(maxsize)
        self._path = overflow_path
        overflow_path.parent.mkdir(parents=True, exist_ok=True)
        cut_torn_tail(overflow_path)
        self._lock = threading.Lock()
        self._spilled = sum(1 for _ in overflow_path.open("rb")) if overflow_path.exists() else 0
        self._offset = 0
        self._read_back: collections.deque[Item] = collections.deque()
        self.spilled_total = 0

    def put(self, item: Item) -> None:
        with self._lock:
            if not self._spilled:
                try:
                    self._queue.put_nowait(item)
                    return
                except queue.Full:
                    pass
            append_lines(self._path, [encode(item)])
            self._spilled += 1
            self.spilled_total += 1

    def get_nowait(self) -> Item:
        return self.get(block=False)

    def get(self, block: bool = True, timeout: float | None = None) -> Item:
        """The oldest item; raises queue.Empty after ``timeout`` (or at once) with none."""
        if self._read_back:
            return self._read_back.popleft()
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            pass
        if self._refill():
            return self._read_back.popleft()
        if not block:
            raise queue.Empty
        return self._queue.get(timeout=timeout)

    @property
    def depth(self) -> int:
        """Items waiting for the writer, in memory and in the overflow file."""
        with self._lock:
            return self._queue.qsize() + len(self._read_back) + self._spilled

    def _refill(self) -> bool:
        with self._lock:
            if not self._spilled:
                return False
            with self._path.open("rb+") as handle:
                handle.seek(self._offset)
                for _ in range(_READ_LINES):
                    line = handle.readline()
                    if not line.endswith(b"\n"):
                        break
                    self._read_back.append(_decode_or_quarantine(line))
                    self._offset += len(line)
                    self._spilled -= 1
                if not self._spilled:
                    # All read back: the reader may use the queue again.
                    handle.truncate(0)
                    self._offset = 0
            return bool(self._read_back)
