"""Which callers a message is for (pure): a set of regencies, or a circle around a point."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from telephony.errors import TelephonyError
from telephony.location.geometry import distance_m, valid_position

_REGENCY = re.compile(r"[0-9]{2}\.[0-9]{2}")
MAX_RADIUS_M = 200_000.0


class AreaError(TelephonyError):
    """An area that names no regency or no usable circle."""


@dataclass(frozen=True)
class Area:
    """Either ``regencies`` (codes such as 35.13) or a circle; never both, never neither."""

    regencies: frozenset[str] = frozenset()
    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None

    def __post_init__(self) -> None:
        circle = (self.lat, self.lon, self.radius_m)
        if self.regencies and any(v is not None for v in circle):
            raise AreaError("an area is a set of regencies or a circle, not both")
        if self.regencies:
            bad = sorted(c for c in self.regencies if not _REGENCY.fullmatch(c))
            if bad:
                raise AreaError(f"not a regency code (NN.NN): {', '.join(bad)}")
            return
        if self.lat is None or self.lon is None or self.radius_m is None:
            raise AreaError("an area needs regencies, or a point and a radius")
        if not valid_position(self.lat, self.lon):
            raise AreaError(f"not a position: {self.lat},{self.lon}")
        if not (math.isfinite(self.radius_m) and 0 < self.radius_m <= MAX_RADIUS_M):
            raise AreaError(f"radius must be more than 0 and at most {MAX_RADIUS_M:.0f} m")

    def covers(self, regency_code: str, lat: float | None, lon: float | None) -> bool:
        """Is a caller located in ``regency_code`` (and at lat, lon when known) inside?"""
        if self.regencies:
            return regency_code in self.regencies
        if lat is None or lon is None or self.lat is None or self.lon is None:
            return False
        return distance_m(self.lat, self.lon, lat, lon) <= (self.radius_m or 0.0)

    def describe(self) -> str:
        if self.regencies:
            return ",".join(sorted(self.regencies))
        return f"{self.lat:.5f},{self.lon:.5f} r={self.radius_m:.0f} m"


def parse_regencies(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def parse_circle(text: str) -> tuple[float, float, float]:
    """``LAT,LON,RADIUS_M`` -> the three numbers."""
    parts = text.split(",")
    if len(parts) != 3:
        raise AreaError(f"expected LAT,LON,RADIUS_M, got {text!r}")
    try:
        lat, lon, radius = (float(p) for p in parts)
    except ValueError:
        raise AreaError(f"expected numbers in LAT,LON,RADIUS_M, got {text!r}") from None
    return lat, lon, radius
