"""The SMS text form of a handset fix (pure), ETSI TS 103 625's AML SMS:

``A"ML=1;lt=+51.53321;lg=-0.12601;rd=14;top=20220131171748;lc=68;pm=W;si=...;ei=...;
mcc=234;mnc=15;ml=126``: latitude and longitude in signed degrees, ``rd`` the radius in
metres (``N`` when there is no location), ``top`` the time of positioning (UTC,
yyyyMMddHHmmss), ``lc`` the confidence in percent, ``pm`` the positioning method (``G``
GNSS, ``W`` Wi-Fi, ``C`` cell, ``N`` none), ``si`` the IMSI (first 6 digits), ``ei`` the
IMEI, ``mcc``/``mnc`` the network, ``ml`` the message length. The SMS gateway gives the
caller's number (the SMS originator) apart from the text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from telephony.aml.fix import Fix, Method, Reason, Rejected, check, coordinate, decimal
from telephony.location.identity import to_e164

MAX_TEXT = 320  # two concatenated SMS: anything longer is not an AML message
_HEADER = 'A"ML'
_TOP = re.compile(r"\d{14}")
_DIGITS = re.compile(r"\d{1,20}")
_METHODS = {"G": Method.GNSS, "W": Method.WIFI, "C": Method.CELL}
REQUIRED = ("lt", "lg", "rd", "top")


def attributes(text: str) -> dict[str, str] | Rejected:
    """The ``key=value`` attributes, or why the text is no AML SMS."""
    text = text.strip()
    if not text:
        return Rejected(Reason.EMPTY)
    if len(text) > MAX_TEXT:
        return Rejected(Reason.MALFORMED, f"over {MAX_TEXT} characters")
    if not text.startswith(_HEADER + "="):
        return Rejected(Reason.NOT_AML)
    found: dict[str, str] = {}
    for part in text.split(";"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or key in found:
            return Rejected(Reason.MALFORMED, part[:24])
        found[key] = value
    return found


def _time(text: str) -> float | None:
    if not _TOP.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _digits(text: str) -> str:
    return text if _DIGITS.fullmatch(text) else ""


def parse_sms(text: str, originator: str, now: float, max_age_s: float,
              max_future_s: float) -> Fix | Rejected:
    found = attributes(text)
    if isinstance(found, Rejected):
        return found
    if found[_HEADER] != "1":
        return Rejected(Reason.VERSION, found[_HEADER][:16])
    missing = [key for key in REQUIRED if key not in found]
    if missing:
        return Rejected(Reason.MALFORMED, "missing " + ",".join(missing))
    # A truncated SMS: the published examples' ml differ from their length by one, so
    # only a larger difference counts.
    length, actual = found.get("ml", ""), len(text.strip())
    if length and (not _DIGITS.fullmatch(length) or abs(int(length) - actual) > 1):
        return Rejected(Reason.LENGTH, f"ml={length[:8]}, text {actual}")
    if found["rd"] == "N" or found.get("pm") == "N":
        return Rejected(Reason.NO_LOCATION)
    lat, lon = coordinate(found["lt"]), coordinate(found["lg"])
    if lat is None or lon is None:
        return Rejected(Reason.MALFORMED, "lt/lg")
    accuracy = decimal(found["rd"])
    if accuracy is None:
        return Rejected(Reason.ACCURACY, found["rd"][:16])
    fixed_at = _time(found["top"])
    if fixed_at is None:
        return Rejected(Reason.TIME, found["top"][:16])
    problem = check(lat, lon, accuracy, fixed_at, now, max_age_s, max_future_s)
    if problem is not None:
        return problem
    confidence = decimal(found.get("lc", ""))
    return Fix(
        transport="sms", number=(to_e164(originator) if originator else None) or "",
        lat=lat, lon=lon, accuracy_m=accuracy, fixed_at=fixed_at,
        method=_METHODS.get(found.get("pm", ""), Method.UNKNOWN),
        confidence=confidence if confidence is not None and confidence <= 100 else None,
        imei=_digits(found.get("ei", "")), imsi=_digits(found.get("si", "")),
        mcc=_digits(found.get("mcc", "")), mnc=_digits(found.get("mnc", "")),
    )
