"""The HTTPS form of a handset fix (pure): ``application/x-www-form-urlencoded`` name-value
pairs as ETSI TS 103 625 and Android ELS send them (``v``, ``emergency_number``, ``source``,
``time``, ``location_latitude``, ``location_longitude``, ``location_time``,
``location_accuracy``, ``location_source``, ``location_confidence``, ``device_number``,
``device_imei``, ``device_imsi``, ``cell_network_mcc``, ``cell_network_mnc``; times in Unix
milliseconds). Every field is optional to the sender; without a position there is no fix.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from telephony.aml.fix import Fix, Method, Reason, Rejected, check, coordinate, decimal
from telephony.location.identity import to_e164

MAX_BODY_BYTES = 8192
MAX_FIELDS = 100
_MILLIS = re.compile(r"\d{1,15}")
_DIGITS = re.compile(r"\d{1,20}")
_SOURCES = {"gps": Method.GNSS, "gnss": Method.GNSS, "wifi": Method.WIFI, "cell": Method.CELL,
            "fused": Method.HYBRID, "hybrid": Method.HYBRID}


def fields(body: bytes) -> dict[str, str] | Rejected:
    """The form's fields (the first of a repeated name), or why the body is no form."""
    if not body.strip():
        return Rejected(Reason.EMPTY)
    if len(body) > MAX_BODY_BYTES:
        return Rejected(Reason.MALFORMED, f"body over {MAX_BODY_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                          max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        return Rejected(Reason.MALFORMED, str(exc)[:80])
    found: dict[str, str] = {}
    for name, value in pairs:
        found.setdefault(name, value.strip())
    return found


def _millis(text: str) -> float | None:
    return int(text) / 1000.0 if _MILLIS.fullmatch(text) else None


def _digits(text: str) -> str:
    return text if _DIGITS.fullmatch(text) else ""


def parse_form(body: bytes, now: float, max_age_s: float, max_future_s: float) -> Fix | Rejected:
    found = fields(body)
    if isinstance(found, Rejected):
        return found
    if "location_latitude" not in found and "location_longitude" not in found:
        return Rejected(Reason.NO_LOCATION if found else Reason.NOT_AML)
    if found.get("v", "1") not in ("1", "2", "3"):
        return Rejected(Reason.VERSION, found["v"][:16])
    lat = coordinate(found.get("location_latitude", ""))
    lon = coordinate(found.get("location_longitude", ""))
    if lat is None or lon is None:
        return Rejected(Reason.MALFORMED, "location_latitude/location_longitude")
    accuracy = decimal(found.get("location_accuracy", ""))
    if accuracy is None:
        return Rejected(Reason.ACCURACY, found.get("location_accuracy", "missing")[:16])
    fixed_at = _millis(found.get("location_time", "")) or _millis(found.get("time", ""))
    if fixed_at is None:
        return Rejected(Reason.TIME, "no location_time or time")
    problem = check(lat, lon, accuracy, fixed_at, now, max_age_s, max_future_s)
    if problem is not None:
        return problem
    confidence = decimal(found.get("location_confidence", ""))
    number = found.get("device_number", "")
    return Fix(
        transport="https", number=(to_e164(number) if number else None) or "",
        lat=lat, lon=lon, accuracy_m=accuracy, fixed_at=fixed_at,
        method=_SOURCES.get(found.get("location_source", "").lower(), Method.UNKNOWN),
        # ELS sends a fraction (0.6827); keep percent, as the SMS form has it.
        confidence=None if confidence is None or confidence > 1 else confidence * 100,
        emergency_number=_digits(found.get("emergency_number", "")),
        imei=_digits(found.get("device_imei", "")), imsi=_digits(found.get("device_imsi", "")),
        mcc=_digits(found.get("cell_network_mcc", "")),
        mnc=_digits(found.get("cell_network_mnc", "")),
    )
