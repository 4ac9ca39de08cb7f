"""Text that becomes Asterisk config: one set of rules for every value we render.

Asterisk's config files are lines of `key = value`; a line break in a value starts a new
line (a new `[section]`, a new endpoint), `;` starts a comment, and in the dialplan `$`
starts an expression. So each value is checked where it enters (config keys, the roster,
trunks.toml, the region file) against the rule for its kind, and the renderer refuses
`unsafe` text in anything it renders, whatever its origin.

Each check returns None when the value is fine, else what is wrong with it, for the
caller's one-line error that names the file and key.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

# A bracketed IPv6 host, the one place a rendered value legitimately holds brackets:
# "[::1]:5039", "sip:[2001:db8::5]:5060".
_BRACKETED_HOST = re.compile(r"(sips?:([^@\s]+@)?)?\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_SPECIAL = {
    ";": "';' (a comment in Asterisk config)",
    '"': "'\"'",
    "\\": "'\\'",
    "$": "'$' (a dialplan expression)",
    "[": "'['",
    "]": "']'",
}
_PATH = re.compile(r"[A-Za-z0-9_./~+@:-]+")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_QUEUE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SIP_URI = re.compile(r"sips?:[A-Za-z0-9._~%+@:\[\]-]+")
_DIALLED = re.compile(r"[*#0-9]{1,4}")
_NUMBER = re.compile(r"\+?[0-9]{1,20}")
NAME_MAX = 64


def unsafe(text: str) -> str | None:
    """What makes `text` unsafe in any Asterisk config value: a line break or other control
    character, or one of ; " \\ $ [ ] (brackets only around an IPv6 host)."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return f"holds a line break or control character (U+{ord(char):04X})"
    for char, what in _SPECIAL.items():
        if char in text and not (char in "[]" and _BRACKETED_HOST.fullmatch(text)):
            return f"holds {what}"
    return None


def name(text: str) -> str | None:
    """A display name (operator, centre, regency): shown on phones and in comments."""
    if not text.strip():
        return "must not be empty"
    if len(text) > NAME_MAX:
        return f"is longer than {NAME_MAX} characters"
    problem = unsafe(text)
    if problem is None and ("<" in text or ">" in text):
        problem = "holds '<' or '>'"
    return problem


def path(text: str) -> str | None:
    """A file or directory path (may be empty: not set)."""
    if text and not _PATH.fullmatch(text):
        return "a path may hold only letters, digits and _ . / ~ + @ : -"
    return None


def address(text: str) -> str | None:
    """An IP address or a host name."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _HOSTNAME.fullmatch(text):
            return "expected an IP address or a host name"
    return None


def network(text: str) -> str | None:
    """An IP address, a network (CIDR) or a host name."""
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return address(text)
    return None


def token(text: str) -> str | None:
    """A user name or section name: 1-64 of letters, digits, _ . and -."""
    return None if _TOKEN.fullmatch(text) else "expected 1-64 of letters, digits, _ . and -"


def secret(text: str) -> str | None:
    """A password as Asterisk stores it (may be empty: generated)."""
    if any(char.isspace() for char in text):
        return "must not hold spaces or line breaks"
    return unsafe(text)


def queue(text: str) -> str | None:
    return None if _QUEUE.fullmatch(text) else "expected 1-64 of a-z, 0-9, _ and -"


def sip_uri(text: str) -> str | None:
    """A SIP URI to send calls to (may be empty: none), e.g. sip:127.0.0.2:5060."""
    if not text:
        return None
    if not _SIP_URI.fullmatch(text):
        return "expected a SIP URI such as sip:192.0.2.10:5060 (no ; parameters)"
    return unsafe(text)


def dial_code(text: str) -> str | None:
    return None if _DIALLED.fullmatch(text) else "expected 1-4 of 0-9, * and #"


def number(text: str) -> str | None:
    return None if _NUMBER.fullmatch(text) else "expected digits, optionally after +"
