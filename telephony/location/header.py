"""Pure tokenisers for SIP header values: comma lists, name-addr, URIs and parameters.

Only what identity and location parsing need (RFC 3261 §25, RFC 3966). Everything is
linear in the input and tolerant: malformed pieces degrade to None, never to exceptions.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

# A whole comma-separated value: quoted strings (possibly unterminated), <...> URIs
# (possibly unterminated) and ordinary runs. Possessive quantifiers keep it linear.
_VALUE = re.compile(r'(?:"(?:[^"\\]++|\\.)*+"?+|<[^>]*+>?+|[^,"<]++)++')
_PARAM = re.compile(r'(?:"(?:[^"\\]++|\\.)*+"?+|[^;"]++)++')
# Hostile headers can hold thousands of values or parameters; real ones hold a handful.
MAX_VALUES = 16
MAX_PARAMS = 32


def split_values(text: str) -> list[str]:
    """Split a header into its comma-separated values, ignoring commas in quotes and <>."""
    values: list[str] = []
    for match in _VALUE.finditer(text):
        value = match.group().strip()
        if value:
            values.append(value)
            if len(values) >= MAX_VALUES:
                break
    return values


def unquote_string(text: str) -> str:
    """The content of a quoted-string, or the text itself when it is not quoted."""
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def parse_params(text: str) -> dict[str, str | None]:
    """Parse `;name=value;flag` parameters; names are case-insensitive, values unquoted."""
    params: dict[str, str | None] = {}
    for match in itertools.islice(_PARAM.finditer(text), MAX_PARAMS):
        piece = match.group()
        name, sep, value = piece.partition("=")
        name = name.strip().lower()
        if name:
            params.setdefault(name, unquote_string(value) if sep else None)
    return params


@dataclass(frozen=True, slots=True)
class NameAddr:
    """One header value: optional display name, the URI text, and header parameters."""

    display_name: str | None
    uri: str
    params: dict[str, str | None] = field(default_factory=dict)


def parse_name_addr(value: str) -> NameAddr | None:
    """Parse `"Name" <uri>;params`, `Name <uri>`, `<uri>` or a bare `uri;params`."""
    rest = value.strip()
    display: str | None = None
    if rest.startswith('"'):
        quoted = re.match(r'"(?:[^"\\]++|\\.)*+"', rest)
        if quoted is None:
            return None
        display = unquote_string(quoted.group())
        rest = rest[quoted.end() :].lstrip()
    if "<" in rest:
        before, _, after = rest.partition("<")
        uri, closed, params = after.partition(">")
        if not closed:
            return None
        if display is None and before.strip():
            display = before.strip()
        return NameAddr(display or None, uri.strip(), parse_params(params.lstrip(";")))
    if display is not None:
        return None
    # Without angle brackets the URI cannot carry parameters (RFC 3261 §20.10).
    uri, _, params = rest.partition(";")
    if not uri.strip():
        return None
    return NameAddr(None, uri.strip(), parse_params(params))


@dataclass(frozen=True, slots=True)
class Uri:
    """The parts of a sip:, sips: or tel: URI that identify a caller; others keep only scheme."""

    scheme: str
    user: str | None
    host: str
    params: dict[str, str | None] = field(default_factory=dict)


def parse_uri(text: str) -> Uri | None:
    """Split a URI into scheme, user, host and URI parameters."""
    scheme, colon, rest = text.strip().partition(":")
    scheme = scheme.lower()
    if not colon or not scheme:
        return None
    if scheme == "tel":
        number, _, params = rest.partition(";")
        return Uri(scheme, unquote(number.strip()), "", parse_params(params))
    if scheme not in ("sip", "sips"):
        return Uri(scheme, None, rest.strip(), {})
    rest = rest.partition("?")[0]
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        hostpart, userinfo = rest, ""
    user = unquote(userinfo.partition(":")[0]) if userinfo else None
    host, _, params = hostpart.partition(";")
    return Uri(scheme, user or None, host.strip().lower(), parse_params(params))
