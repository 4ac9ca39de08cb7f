"""Pure SIP text helpers of the phone: name-addr, header and URI parsing."""

from __future__ import annotations

import re

# RFC 3261 compact header names, so `headers` of an incoming INVITE has one key per header.
COMPACT_HEADERS = {
    "f": "from", "t": "to", "i": "call-id", "m": "contact", "v": "via", "l": "content-length",
    "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding",
}


def parse_name_addr(value: str) -> tuple[str, str]:
    """(display name, URI) of a From/To/PAI value; the display name unquoted, or ""."""
    match = re.match(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>', value)
    if match:
        quoted, token, uri = match.groups()
        name = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token.strip()
        return name, uri.strip()
    return "", value.split(";", 1)[0].strip()


def parse_sip_message(text: str) -> tuple[str, dict[str, list[str]]]:
    """Start line and headers (lower-case names, compact forms expanded) of a SIP message."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last is not None:
            headers[last][-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        key = COMPACT_HEADERS.get(key, key)
        headers.setdefault(key, []).append(value.strip())
        last = key
    return lines[0].strip(), headers


def uri_host_port(uri: str) -> tuple[str, int | None]:
    """Host and port of a sip: URI (port None when absent)."""
    match = re.search(r"sips?:(?:[^@;>]*@)?(\[[^\]]+\]|[^:;>?\s]+)(?::(\d+))?", uri)
    if not match:
        return "", None
    return match.group(1), int(match.group(2)) if match.group(2) else None



def uri_user(uri: str) -> str:
    match = re.match(r"sips?:([^@;>]*)@", uri.strip())
    return match.group(1) if match else ""



def id_uri(display_name: str | None, user: str, host: str) -> str:
    uri = f"sip:{user}@{host}"
    if display_name:
        escaped = display_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{uri}>'
    return uri

