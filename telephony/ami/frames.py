"""AMI wire format: an incremental, pure parser for inbound frames and an encoder for actions.

An AMI stream is a banner line (``Asterisk Call Manager/x.y.z``) followed by frames: lines of
``Key: Value`` terminated by an empty line. Keys may repeat (``ChanVariable``, ``Output``), so a
frame keeps every pair in arrival order. Legacy ``Response: Follows`` frames carry raw command
output up to ``--END COMMAND--``; their lines become ``Output`` fields so callers see the same
shape as modern ``Response: Success`` / ``Output:`` replies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

from asterisk.ami import Action

_BANNER = re.compile(r"^Asterisk Call Manager/(?P<version>[0-9][0-9.]*)", re.IGNORECASE)
_END_COMMAND = "--END COMMAND--"
# A peer that never sends a newline must not make us buffer without bound.
MAX_LINE_BYTES = 64 * 1024


class Frame:
    """One AMI message: ordered ``(key, value)`` pairs with case-insensitive lookup.

    ``received_ns`` is the wall-clock time (ns since the epoch) at which the bytes completing the
    frame were read; the socket edge stamps it so lag and idempotency keys survive queueing.
    """

    __slots__ = ("_index", "fields", "received_ns")

    def __init__(self, fields: Iterable[tuple[str, str]], received_ns: int = 0) -> None:
        self.fields: tuple[tuple[str, str], ...] = tuple(fields)
        self.received_ns = received_ns
        self._index: dict[str, list[str]] = {}
        for key, value in self.fields:
            self._index.setdefault(key.lower(), []).append(value)

    @classmethod
    def of(cls, mapping: Mapping[str, str], received_ns: int = 0) -> Frame:
        return cls(mapping.items(), received_ns)

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self._index.get(key.lower())
        return values[0] if values else default

    def get_all(self, key: str) -> list[str]:
        return list(self._index.get(key.lower(), ()))

    def __getitem__(self, key: str) -> str:
        values = self._index.get(key.lower())
        if not values:
            raise KeyError(key)
        return values[0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frame) and self.fields == other.fields

    def __hash__(self) -> int:
        return hash(self.fields)

    def __repr__(self) -> str:
        return f"Frame({list(self.fields)!r})"

    @property
    def event(self) -> str | None:
        """The event name, or None when this frame is a response."""
        return self.get("Event")

    @property
    def response(self) -> str | None:
        """The response status (Success, Error, Follows, Goodbye), or None for events."""
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def to_dict(self) -> dict[str, str | list[str]]:
        """Keys in first-seen order; a repeated key maps to the list of its values."""
        out: dict[str, str | list[str]] = {}
        for key, value in self.fields:
            if key not in out:
                out[key] = value
                continue
            previous = out[key]
            if isinstance(previous, list):
                previous.append(value)
            else:
                out[key] = [previous, value]
        return out


class FrameParser:
    """Feed bytes as they arrive; get back the frames they complete, in arrival order.

    Lines end in CRLF; a bare LF is tolerated. A frame whose lines are all garbage (no ``Key:``)
    is dropped and counted in ``garbage_lines``; so are stray non-``Key:`` lines inside a frame,
    because Asterisk never emits them outside ``Response: Follows`` output.
    """

    def __init__(self) -> None:
        self.version: str | None = None
        self.garbage_lines = 0
        self._buffer = bytearray()
        self._scan_from = 0
        self._fields: list[tuple[str, str]] = []
        self._follows = False
        self._follows_output = False

    def feed(self, data: bytes, received_ns: int = 0) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        start = 0
        while True:
            newline = self._buffer.find(b"\n", max(start, self._scan_from))
            if newline < 0:
                break
            raw = bytes(self._buffer[start:newline])
            start = newline + 1
            frame = self._line(raw.rstrip(b"\r").decode("utf-8", errors="replace"), received_ns)
            if frame is not None:
                frames.append(frame)
        del self._buffer[:start]
        self._scan_from = len(self._buffer)
        if len(self._buffer) > MAX_LINE_BYTES:
            self.garbage_lines += 1
            self._buffer.clear()
            self._scan_from = 0
        return frames

    def _line(self, line: str, received_ns: int) -> Frame | None:
        if self._follows:
            return self._follows_line(line, received_ns)
        if not line:
            return self._finish(received_ns)
        if not self._fields:
            banner = _BANNER.match(line)
            if banner:
                self.version = banner.group("version")
                return None
        field = _split_field(line)
        if field is None:
            self.garbage_lines += 1
            return None
        self._fields.append(field)
        if field[0].lower() == "response" and field[1].lower() == "follows":
            self._follows = True
            self._follows_output = False
        return None

    def _follows_line(self, line: str, received_ns: int) -> Frame | None:
        # Headers (ActionID, Privilege) precede the raw output; both end at --END COMMAND--.
        if line.endswith(_END_COMMAND):
            output = line[: -len(_END_COMMAND)]
            if output:
                self._fields.append(("Output", output))
            self._follows = False
            return None
        field = None if self._follows_output else _split_field(line)
        if field is None:
            self._follows_output = True
            field = ("Output", line)
        self._fields.append(field)
        return None

    def _finish(self, received_ns: int) -> Frame | None:
        if not self._fields:
            return None
        frame = Frame(self._fields, received_ns)
        self._fields = []
        return frame


def _split_field(line: str) -> tuple[str, str] | None:
    key, sep, value = line.partition(":")
    if not sep or not key or any(c.isspace() for c in key):
        return None
    return key, value[1:] if value.startswith(" ") else value


class ActionFieldError(ValueError):
    """A field would break AMI framing (CR or LF inside a key or value)."""


def encode_action(
    name: str,
    action_id: str,
    fields: Mapping[str, str],
    variables: Mapping[str, str] | None = None,
) -> bytes:
    """Render one action, refusing CR/LF so caller data cannot inject extra headers."""
    checked = {"ActionID": action_id, **fields}
    extra = dict(variables or {})
    for text in (name, *checked, *checked.values(), *extra, *extra.values()):
        if "\r" in text or "\n" in text:
            raise ActionFieldError(f"CR/LF not allowed in AMI action field: {text!r}")
    action = Action(name, checked, extra)
    return (str(action) + "\r\n").encode("utf-8")
