"""The quarantine: what the audit chain must not take, kept with its reason, once.

A file of fsynced JSON lines rather than a table, because what lands here is what the
database refused or what must never reach it (a frame whose identity is a caller's text): a
file takes any text of any length, works while the database is down, and cannot fail the
way the write it stands in for just failed. ``telephony`` reads it back with :func:`read`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from telephony.ami.frames import Frame
from telephony.audit.events import canonical_json
from telephony.audit.files import append_lines, cut_torn_tail


@dataclass(frozen=True)
class Entry:
    reason: str
    linkedid: str
    source: str
    parts: tuple[tuple[tuple[str, str], ...], ...]
    received_ns: int
    at: str


class Quarantine:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        cut_torn_tail(path)
        self.count = sum(1 for _ in path.open("rb")) if path.exists() else 0

    def add(self, parts: Sequence[Frame], reason: str, *, linkedid: str = "",
            source: str = "ami") -> None:  # fmt: skip
        line = canonical_json({
            "at": datetime.now(UTC).isoformat(),
            "reason": reason,
            "linkedid": linkedid,
            "source": source,
            "received_ns": parts[0].received_ns if parts else 0,
            "parts": [[list(pair) for pair in part.fields] for part in parts],
        })  # fmt: skip
        append_lines(self.path, [line])
        self.count += 1


def read(path: Path) -> list[Entry]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        parts = tuple(tuple((str(k), str(v)) for k, v in part) for part in data["parts"])
        entries.append(Entry(str(data["reason"]), str(data["linkedid"]), str(data["source"]),
                             parts, int(data["received_ns"]), str(data["at"])))  # fmt: skip
    return entries
