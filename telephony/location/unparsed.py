"""The value every location parser returns when it cannot make sense of its input.

Headers and bodies come from the network, so a parser never raises on them: it returns
either its result or an `Unparsed` that keeps the raw input for the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass

# Caps keep the cost of a hostile header or body bounded: real values are far smaller.
MAX_HEADER_CHARS = 16 * 1024
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Unparsed:
    """Input a parser could not use, kept as it arrived, with a short machine-readable reason."""

    raw: str | bytes
    reason: str


def as_text(value: str | bytes) -> str:
    """Decode header bytes leniently: a stray byte must not cost us the whole header."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value
