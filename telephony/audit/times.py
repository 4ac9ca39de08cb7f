"""Event times, parsed by one guarded function for AMI ``Timestamp`` and CEL ``eventtime``.

Both come from outside our process (a hostile or broken frame can say ``Timestamp: \u00b2``
or ``999999999999``), so nothing here raises: an unreadable time is None and the caller
falls back to the receipt time.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

_TEXT_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")


def parse_time(text: str, tz: tzinfo | None = None) -> datetime | None:
    """Epoch seconds (with a fraction) or local wall-clock text in ``tz``; None if unreadable."""
    text = text.strip()
    whole, dot, fraction = text.partition(".")
    try:
        if _digits(whole) and (not dot or _digits(fraction)):
            micros = int((fraction + "000000")[:6])
            return datetime.fromtimestamp(int(whole), UTC).replace(microsecond=micros)
        for layout in _TEXT_FORMATS:
            try:
                naive = datetime.strptime(text, layout)
            except ValueError:
                continue
            # A naive datetime's astimezone() reads it in the local zone, DST rules included.
            local = naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()
            return local.astimezone(UTC)
    except (OverflowError, OSError, ValueError):
        return None  # a time outside what datetime holds is as unreadable as no time
    return None


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
