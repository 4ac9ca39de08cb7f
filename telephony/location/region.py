"""Regencies (kabupaten/kota) of the province, their reference points and neighbours.

No package ships Indonesian regency boundaries, so a position is resolved to the regency
owning the nearest reference point (the regency seat or a district seat inside it), within
a configurable distance. Near a border, or with a large uncertainty, several regencies can
be the right answer; they are returned as alternatives and the result is marked ambiguous.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telephony import values
from telephony.contract import province_queue, regency_queue
from telephony.errors import ConfigurationError
from telephony.location.geometry import distance_m, valid_position

# Reference points only approximate borders, so two regencies closer than this to being
# equally near are both reported.
AMBIGUITY_SLACK_M = 2_000.0
_REGENCY_CODE = re.compile(r"[0-9]{2}\.[0-9]{2}")
_PROVINCE_CODE = re.compile(r"[0-9]{2}")


class RegionDataError(ConfigurationError):
    """The region file is missing, malformed or inconsistent; the message names the entry."""


@dataclass(frozen=True, slots=True)
class ReferencePoint:
    name: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Regency:
    """A kabupaten or kota: Kemendagri code (e.g. 35.07), name, reference points, neighbours."""

    code: str
    name: str
    launch: bool
    points: tuple[ReferencePoint, ...]
    neighbours: tuple[str, ...]

    @property
    def point(self) -> ReferencePoint:
        """The representative point: the first listed, normally the regency seat."""
        return self.points[0]


@dataclass(frozen=True, slots=True)
class NearestSeat:
    """The regency owning the nearest reference point, and those nearly as near."""

    regency: Regency
    point: ReferencePoint
    distance_m: float
    alternatives: tuple[str, ...]

    @property
    def ambiguous(self) -> bool:
        return bool(self.alternatives)


@dataclass(frozen=True, slots=True)
class Regions:
    province_code: str
    province_name: str
    max_distance_m: float
    regencies: Mapping[str, Regency]

    def nearest(self, lat: float, lon: float, uncertainty_m: float = 0.0) -> NearestSeat | None:
        """The regency for a position, or None when no reference point is close enough."""
        if not valid_position(lat, lon) or not self.regencies:
            return None
        ranked = sorted(
            (min((distance_m(lat, lon, p.lat, p.lon), i) for i, p in enumerate(r.points)), code)
            for code, r in self.regencies.items()
        )
        (best_distance, best_index), best_code = ranked[0]
        if best_distance > self.max_distance_m:
            return None
        # The caller may be anywhere within the uncertainty, which can swing the comparison
        # of two distances by twice its size.
        reach = best_distance + 2 * max(uncertainty_m, 0.0) + AMBIGUITY_SLACK_M
        alternatives = tuple(code for (d, _), code in ranked[1:] if d <= reach)
        regency = self.regencies[best_code]
        return NearestSeat(regency, regency.points[best_index], best_distance, alternatives)

    def queue_for(self, regency_code: str | None) -> str:
        """The queue for a regency when it is launched, else the province queue."""
        regency = self.regencies.get(regency_code) if regency_code else None
        if regency is not None and regency.launch:
            return queue_name(regency.code)
        return queue_name(self.province_code)


def queue_name(code: str) -> str:
    """The Asterisk queue for a regency (35.07 -> reg-3507) or a province (35 -> prov-35)."""
    if _REGENCY_CODE.fullmatch(code):
        return regency_queue(code)
    if _PROVINCE_CODE.fullmatch(code):
        return province_queue(code)
    raise ValueError(f"not a Kemendagri province or regency code: {code!r}")


def _point(entry: Any, where: str) -> ReferencePoint:
    try:
        point = ReferencePoint(str(entry["name"]), float(entry["lat"]), float(entry["lon"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise RegionDataError(f"{where}: a point needs name, lat and lon") from exc
    if not valid_position(point.lat, point.lon):
        raise RegionDataError(f"{where}: point {point.name!r} is not a valid position")
    return point


def _regency(entry: Any, province: str, path: str | Path) -> Regency:
    code = str(entry.get("code", "")) if isinstance(entry, dict) else ""
    if not _REGENCY_CODE.fullmatch(code) or not code.startswith(province + "."):
        raise RegionDataError(f"{path}: regency {code!r}: code must look like {province}.NN")
    where = f"{path}: regency {code}"
    name, points, neighbours = entry.get("name"), entry.get("points"), entry.get("neighbours", [])
    if not isinstance(name, str) or not name:
        raise RegionDataError(f"{where}: missing name")
    # Regency names are rendered into queues_112.conf.
    if problem := values.name(name):
        raise RegionDataError(f"{where}: name {name!r} {problem}")
    if not isinstance(points, list) or not points:
        raise RegionDataError(f"{where}: points: needs at least one point")
    if not isinstance(neighbours, list) or not all(isinstance(n, str) for n in neighbours):
        raise RegionDataError(f"{where}: neighbours must be a list of codes")
    return Regency(
        code=code,
        name=name,
        launch=bool(entry.get("launch", False)),
        points=tuple(_point(p, where) for p in points),
        neighbours=tuple(neighbours),
    )


def load_regions(path: str | Path) -> Regions:
    """Load and check a region file (see config/README.md); raises RegionDataError."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegionDataError(f"{path}: {exc}") from exc
    province = data.get("province", {})
    code = str(province.get("code", ""))
    if not _PROVINCE_CODE.fullmatch(code):
        raise RegionDataError(f"{path}: [province] code must be two digits")
    try:
        max_distance_m = float(province.get("max_distance_km", 30)) * 1000
    except (TypeError, ValueError) as exc:
        raise RegionDataError(f"{path}: [province] max_distance_km must be a number") from exc
    if max_distance_m <= 0:
        raise RegionDataError(f"{path}: [province] max_distance_km must be positive")
    regencies: dict[str, Regency] = {}
    for entry in data.get("regency", []):
        regency = _regency(entry, code, path)
        if regency.code in regencies:
            raise RegionDataError(f"{path}: regency {regency.code}: listed twice")
        regencies[regency.code] = regency
    for regency in regencies.values():
        for neighbour in regency.neighbours:
            other = regencies.get(neighbour)
            if other is None or neighbour == regency.code:
                raise RegionDataError(
                    f"{path}: regency {regency.code}: unknown neighbour {neighbour}"
                )
            if regency.code not in other.neighbours:
                raise RegionDataError(
                    f"{path}: regency {regency.code}: {neighbour} does not list it back as a "
                    "neighbour"
                )
    province_name = str(province.get("name", ""))
    if province_name and (problem := values.name(province_name)):
        raise RegionDataError(f"{path}: [province] name {province_name!r} {problem}")
    return Regions(code, province_name, max_distance_m, regencies)
