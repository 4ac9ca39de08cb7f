"""Finding the PIDF-LO in a SIP message body: a multipart/mixed part named by Content-ID.

RFC 6442 puts the location in a body part and points at it from the Geolocation header
with a cid: URI (RFC 2392). Bodies are capped in size; nesting is followed a few levels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telephony.location.header import parse_params
from telephony.location.unparsed import MAX_BODY_BYTES, Unparsed

PIDF_TYPE = "application/pidf+xml"
_MAX_DEPTH = 3
# A SIP body carries SDP, a PIDF-LO and perhaps ISUP; more parts than this is an attack.
_MAX_PARTS = 16
_BLANK_LINE = re.compile(rb"\r?\n[ \t]*\r?\n")
_HEADER_LINE = re.compile(r"\s*[A-Za-z0-9-]+\s*:")


@dataclass(frozen=True, slots=True)
class BodyPart:
    """One MIME part: its media type (lower-case, no parameters), Content-ID and bytes."""

    content_type: str
    content_id: str | None
    data: bytes


def media_type(content_type: str) -> str:
    """`type/subtype` of a Content-Type value, lower-cased."""
    return content_type.partition(";")[0].strip().lower()


def _part_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    name = ""
    for line in block.decode("utf-8", errors="replace").splitlines():
        # A folded line continues the previous header, unless it is an indented header.
        if line[:1] in (" ", "\t") and name and not _HEADER_LINE.match(line):
            headers[name] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if colon and name:
            headers.setdefault(name, value.strip())
        else:
            name = ""
    return headers


def _split_multipart(content_type: str, body: bytes, depth: int) -> list[BodyPart]:
    boundary = parse_params(content_type.partition(";")[2]).get("boundary")
    if not boundary or depth > _MAX_DEPTH:
        return []
    delimiter = b"--" + boundary.encode("utf-8", errors="replace")
    parts: list[BodyPart] = []
    # The first chunk is the preamble; a chunk starting with "--" is the close delimiter.
    for chunk in body.split(delimiter, _MAX_PARTS + 1)[1 : _MAX_PARTS + 1]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
        split = _BLANK_LINE.search(chunk)
        head, data = (chunk[: split.start()], chunk[split.end() :]) if split else (b"", chunk)
        # The line break before the next delimiter belongs to the delimiter (RFC 2046).
        data = data.removesuffix(b"\n").removesuffix(b"\r")
        headers = _part_headers(head)
        part_type = headers.get("content-type", "text/plain")
        if media_type(part_type).startswith("multipart/"):
            parts.extend(_split_multipart(part_type, data, depth + 1))
            continue
        content_id = headers.get("content-id")
        parts.append(
            BodyPart(media_type(part_type), content_id.strip("<> ") if content_id else None, data)
        )
    return parts


def body_parts(content_type: str, body: bytes) -> list[BodyPart] | Unparsed:
    """The leaf parts of a message body; a non-multipart body is its own single part."""
    if len(body) > MAX_BODY_BYTES:
        return Unparsed(body, "too-large")
    if media_type(content_type).startswith("multipart/"):
        parts = _split_multipart(content_type, body, 1)
        return parts if parts else Unparsed(body, "bad-multipart")
    return [BodyPart(media_type(content_type), None, body)]


def find_pidf(content_type: str, body: bytes, content_id: str | None) -> BodyPart | Unparsed:
    """The PIDF-LO part: the one the cid: names, else the first application/pidf+xml part."""
    parts = body_parts(content_type, body)
    if isinstance(parts, Unparsed):
        return parts
    wanted = content_id.lower() if content_id else None
    named = [p for p in parts if wanted and p.content_id and p.content_id.lower() == wanted]
    # A wrong or missing Content-ID is a sender's slip; the location is still worth having.
    pidf = named or [p for p in parts if p.content_type == PIDF_TYPE]
    return pidf[0] if pidf else Unparsed(body, "no-pidf")
