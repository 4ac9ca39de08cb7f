"""The spool: frames the database could not take yet, as fsynced JSON lines, in arrival order.

Replay goes through the same idempotent write path as live events, so a crash between a commit
and the spool being cleared only costs re-reading lines the database already holds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from telephony.ami.frames import Frame
from telephony.audit.events import canonical_json
from telephony.audit.files import append_lines, cut_torn_tail


def _line(frame: Frame, source: str) -> str:
    fields = [list(pair) for pair in frame.fields]
    return canonical_json({"fields": fields, "received_ns": frame.received_ns, "source": source})


def _item(line: bytes) -> tuple[Frame, str]:
    data = json.loads(line)
    fields = [(str(key), str(value)) for key, value in data["fields"]]
    return Frame(fields, int(data["received_ns"])), str(data["source"])


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        cut_torn_tail(path)
        self.backlog = sum(1 for _ in path.open("rb")) if path.exists() else 0

    def append(self, frames: Sequence[Frame], source: str) -> None:
        append_lines(self.path, (_line(frame, source) for frame in frames))
        self.backlog += len(frames)

    def read(self, offset: int, limit: int) -> tuple[list[tuple[Frame, str]], int]:
        """Up to ``limit`` items starting at byte ``offset``, and the offset after them."""
        items: list[tuple[Frame, str]] = []
        with self.path.open("rb") as handle:
            handle.seek(offset)
            while len(items) < limit:
                line = handle.readline()
                if not line.endswith(b"\n"):
                    break
                items.append(_item(line))
                offset += len(line)
        return items, offset

    def consumed(self, count: int) -> None:
        self.backlog -= count

    def clear(self) -> None:
        with self.path.open("rb+") as handle:
            handle.truncate(0)
            handle.flush()
            os.fsync(handle.fileno())
        self.backlog = 0
