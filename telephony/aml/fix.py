"""The record a handset fix becomes, whichever transport carried it, and why one is refused.

Pure. The range checks are the same for both transports, so they live here once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

# Accuracy beyond this is no handset fix (a cell sector is a few km; 100 km is nothing).
MAX_ACCURACY_M = 100_000.0
_NUMBER = re.compile(r"[+-]?\d{1,3}(?:\.\d{1,17})?")
_DECIMAL = re.compile(r"\d{1,6}(?:\.\d{1,6})?")


class Reason(StrEnum):
    """Why a message is not a usable fix (the HTTPS answer stays 200: TS 103 625)."""

    EMPTY = "empty"
    NOT_AML = "not-aml"
    VERSION = "unsupported-version"
    MALFORMED = "malformed"
    NO_LOCATION = "no-location"
    LATITUDE = "latitude-out-of-range"
    LONGITUDE = "longitude-out-of-range"
    ACCURACY = "accuracy-out-of-range"
    TIME = "time-out-of-range"
    LENGTH = "length-mismatch"
    NUMBER = "no-caller-number"


class Method(StrEnum):
    """How the handset found itself (ELS location_source / AML pm)."""

    GNSS = "gnss"
    WIFI = "wifi"
    CELL = "cell"
    HYBRID = "hybrid"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Fix:
    transport: str  # "https" or "sms"
    number: str  # the caller's E.164 number ("" when the message carries none)
    lat: float
    lon: float
    accuracy_m: float
    fixed_at: float  # when the handset took the fix (Unix seconds)
    method: Method
    confidence: float | None = None  # percent
    emergency_number: str = ""
    imei: str = ""
    imsi: str = ""
    mcc: str = ""
    mnc: str = ""


@dataclass(frozen=True)
class Rejected:
    reason: Reason
    detail: str = ""


def coordinate(text: str) -> float | None:
    """A signed decimal degree as the handsets write it ("+51.53321"); None if it is not."""
    if not _NUMBER.fullmatch(text):
        return None
    return float(text)


def decimal(text: str) -> float | None:
    """A plain non-negative decimal (metres, percent); None if it is not one."""
    if not _DECIMAL.fullmatch(text):
        return None
    return float(text)


def check(lat: float, lon: float, accuracy_m: float, fixed_at: float, now: float,
          max_age_s: float, max_future_s: float) -> Rejected | None:
    """The range checks every fix passes, or the first it fails."""
    if not -90.0 <= lat <= 90.0:
        return Rejected(Reason.LATITUDE, f"{lat}")
    if not -180.0 <= lon <= 180.0:
        return Rejected(Reason.LONGITUDE, f"{lon}")
    if not (math.isfinite(accuracy_m) and 0.0 < accuracy_m <= MAX_ACCURACY_M):
        return Rejected(Reason.ACCURACY, f"{accuracy_m}")
    if not (math.isfinite(fixed_at) and now - max_age_s <= fixed_at <= now + max_future_s):
        return Rejected(Reason.TIME, f"fix at {fixed_at:.0f}, now {now:.0f}")
    return None
