"""Length contracts for text from outside (Asterisk, and through it the caller).

An audit record whose own columns would not hold it is rejected into the quarantine (a
shortened type or id would be a different record); projection and callback columns are
truncated, with ``MARKER`` at the end so nobody takes the rest for the whole value. The
lengths are the ones the tables declare (``String(n)``), so a contract and its column cannot
drift apart; SQLite does not enforce them, PostgreSQL does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import String, Table

from telephony.audit.events import EventRecord

MARKER = "\u2026"
# audit_events: type String(64), linkedid/uniqueid String(150), source String(32).
RECORD_LIMITS = {"type": 64, "linkedid": 150, "uniqueid": 150, "source": 32}


def record_problem(record: EventRecord) -> str | None:
    for name, limit in RECORD_LIMITS.items():
        value: str = getattr(record, name)
        if len(value) > limit:
            return f"too-long: {name} has {len(value)} characters, the column holds {limit}"
    return None


def clip(value: str, limit: int) -> str:
    """``value``, or its first characters and MARKER, ``limit`` characters in all."""
    return value if len(value) <= limit else value[: limit - len(MARKER)] + MARKER


def column_limits(table: Table) -> dict[str, int]:
    return {
        column.name: column.type.length
        for column in table.columns
        if isinstance(column.type, String) and column.type.length
    }


def clip_row(row: Mapping[str, Any], limits: Mapping[str, int]) -> dict[str, Any]:
    return {
        name: clip(value, limits[name]) if isinstance(value, str) and name in limits else value
        for name, value in row.items()
    }
