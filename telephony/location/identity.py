"""Who is calling: the caller's number from P-Asserted-Identity, Remote-Party-ID or From.

A withheld number and a caller with no usable number (a phone without a SIM) are states of
the result, not errors: an emergency call is answered whatever its identity looks like.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

from telephony.location.header import NameAddr, parse_name_addr, parse_uri, split_values
from telephony.location.unparsed import MAX_HEADER_CHARS, as_text

DEFAULT_REGION = "ID"

# Privacy values (RFC 3323, RFC 3325) that ask for the caller's identity to be hidden.
_HIDING_PRIVACY = frozenset({"id", "user", "header"})
# Remote-Party-ID privacy values (draft-ietf-sip-privacy-04) that hide the number.
_HIDING_RPID_PRIVACY = frozenset({"full", "uri"})
# User parts that networks put in place of a withheld number.
_ANONYMOUS_USERS = frozenset({"anonymous", "restricted", "private", "withheld"})
_VISUAL_SEPARATORS = re.compile(r"[-.() ]")
_DIALLABLE = re.compile(r"\+?[0-9]{2,20}")


class IdentityState(StrEnum):
    AVAILABLE = "available"
    WITHHELD = "withheld"
    NO_NUMBER = "no-number"


class IdentitySource(StrEnum):
    P_ASSERTED_IDENTITY = "p-asserted-identity"
    REMOTE_PARTY_ID = "remote-party-id"
    FROM = "from"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """The caller as the network presented them; `raw` is the header value used."""

    state: IdentityState
    source: IdentitySource
    raw: str
    number: str | None
    e164: str | None
    display_name: str | None
    privacy: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Candidate:
    source: IdentitySource
    raw: str
    address: NameAddr
    number: str | None
    phone_context: str | None
    anonymous: bool


def to_e164(number: str, *, phone_context: str | None = None) -> str | None:
    """Normalise a dialled-form number to E.164; Indonesian national forms are assumed."""
    region = DEFAULT_REGION
    context = phone_context or ""
    if number.startswith("+"):
        pass
    elif context.startswith("+") and context[1:].isdigit():
        region = phonenumbers.region_code_for_country_code(int(context[1:]))
    elif number.startswith("62"):
        # International form without the "+": national numbers start with the trunk 0.
        number = "+" + number
    elif not number.startswith("0") or number.startswith("00"):
        # Not a dialled form we can read safely: an IMSI user part, an extension, a short
        # code, or an IDD prefix that libphonenumber does not know for Indonesia.
        return None
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    # "Possible" rather than "valid": new number ranges reach 112 before libphonenumber.
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parse_privacy(value: str | bytes) -> tuple[str, ...]:
    """The Privacy header's values, lower-cased, in order."""
    text = as_text(value)[:MAX_HEADER_CHARS]
    return tuple(token for token in re.split(r"[\s;,]+", text.lower()) if token)


def _candidates(source: IdentitySource, header: str | bytes) -> Iterator[_Candidate]:
    text = as_text(header)
    if len(text) > MAX_HEADER_CHARS:
        return
    for value in split_values(text):
        address = parse_name_addr(value)
        if address is None:
            continue
        uri = parse_uri(address.uri)
        user = uri.user if uri is not None else None
        host = uri.host if uri is not None else ""
        anonymous = host.endswith("anonymous.invalid") or (
            user is not None and user.lower() in _ANONYMOUS_USERS
        )
        number: str | None = None
        context: str | None = None
        if user is not None and uri is not None and not host.endswith(".invalid"):
            digits = _VISUAL_SEPARATORS.sub("", user.partition(";")[0])
            if _DIALLABLE.fullmatch(digits):
                number = digits
                context = uri.params.get("phone-context") or address.params.get("phone-context")
        yield _Candidate(source, value, address, number, context, anonymous)


def parse_identity(
    p_asserted_identity: str | bytes = "",
    remote_party_id: str | bytes = "",
    from_header: str | bytes = "",
    privacy: str | bytes = "",
) -> CallerIdentity:
    """Pick the caller's number: P-Asserted-Identity, then Remote-Party-ID, then From."""
    privacy_values = parse_privacy(privacy)
    candidates = [
        *_candidates(IdentitySource.P_ASSERTED_IDENTITY, p_asserted_identity),
        *_candidates(IdentitySource.REMOTE_PARTY_ID, remote_party_id),
        *_candidates(IdentitySource.FROM, from_header),
    ]
    # libphonenumber is the costly step, so numbers are tried in order only until one fits.
    chosen, e164 = None, None
    for candidate in candidates:
        if candidate.number is not None:
            e164 = to_e164(candidate.number, phone_context=candidate.phone_context)
            if e164 is not None:
                chosen = candidate
                break
    withheld = bool(_HIDING_PRIVACY.intersection(privacy_values)) or any(
        c.anonymous
        or (
            c.source is IdentitySource.REMOTE_PARTY_ID
            and (c.address.params.get("privacy") or "").lower() in _HIDING_RPID_PRIVACY
        )
        for c in candidates
    )
    if chosen is None:
        # Keep whatever number-like text arrived so the record shows what the network sent.
        fallback = next((c for c in candidates if c.number is not None), None)
        first = fallback or (candidates[0] if candidates else None)
        return CallerIdentity(
            state=IdentityState.WITHHELD if withheld else IdentityState.NO_NUMBER,
            source=first.source if first else IdentitySource.NONE,
            raw=first.raw if first else "",
            number=fallback.number if fallback else None,
            e164=None,
            display_name=first.address.display_name if first else None,
            privacy=privacy_values,
        )
    return CallerIdentity(
        state=IdentityState.WITHHELD if withheld else IdentityState.AVAILABLE,
        source=chosen.source,
        raw=chosen.raw,
        number=chosen.number,
        e164=e164,
        display_name=chosen.address.display_name,
        privacy=privacy_values,
    )
