"""Location conveyed with the call (RFC 6442): the Geolocation header and Asterisk's view of it.

Asterisk's res_pjsip_geolocation turns a PIDF-LO into an effective profile; the dialplan
reads it with ${GEOLOC_PROFILE(location_info)}, which renders as `name="value"` pairs
joined by commas (res_geolocation/geoloc_dialplan.c), e.g.
  shape="Circle",crs="2d",pos="-7.2575 112.7521",radius="30"
  URI="https://lis.example/loc/1"            (a location by reference)
  country="ID",A1="Jawa Timur",A3="Surabaya" (a civic address)
Angles carry a unit ("90 degrees"); lengths are metres. References are recorded, never
fetched: dereferencing would put the network in charge of what we connect to.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from telephony.location.geometry import distance_m, valid_position
from telephony.location.header import parse_name_addr, split_values
from telephony.location.unparsed import MAX_HEADER_CHARS, Unparsed, as_text

# Names start at a word boundary so a long run without "=" is scanned once, not per char.
_PAIR = re.compile(r'(?<![\w.-])([A-Za-z][\w.-]*+)\s*+=\s*+(?:"([^"]*+)"?+|([^,\s"]*+))')
# Enough for any real shape: a polygon's vertices arrive as one posList value.
_MAX_PAIRS = 64
_METRE_UNITS = frozenset(
    {"", "m", "metre", "metres", "meter", "meters", "urn:ogc:def:uom:epsg::9001"}
)
# Shapes whose first position is the centre, and the length that bounds the uncertainty.
_CENTRED = {
    "point": None,
    "circle": "radius",
    "sphere": "radius",
    "ellipse": "semimajoraxis",
    "ellipsoid": "semimajoraxis",
}
_POLYGONS = frozenset({"polygon", "prism"})


@dataclass(frozen=True, slots=True)
class Shape:
    """A location shape; lat/lon/radius are set when the shape reduces to a centre."""

    kind: str
    lat: float | None
    lon: float | None
    radius_m: float | None
    raw: str

    @property
    def has_position(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True, slots=True)
class LocationReference:
    """One Geolocation URI: a cid: pointing into the body, or a reference we only record."""

    uri: str
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return self.uri.partition(":")[0].lower()

    @property
    def content_id(self) -> str | None:
        """The Content-ID a cid: URI names (RFC 2392), or None for other schemes."""
        return unquote(self.uri[4:]) if self.scheme == "cid" else None


def parse_geolocation(value: str | bytes) -> tuple[LocationReference, ...] | Unparsed:
    """The URIs of a Geolocation header, in order of preference as sent."""
    text = as_text(value)
    if len(text) > MAX_HEADER_CHARS:
        return Unparsed(value, "too-large")
    refs = []
    for item in split_values(text):
        address = parse_name_addr(item)
        if address is not None and ":" in address.uri:
            refs.append(LocationReference(address.uri, address.params))
    return tuple(refs) if refs else Unparsed(value, "no-uri")


def parse_position(text: str) -> tuple[float, float] | None:
    """A GML `pos`: "lat lon" or "lat lon alt" in decimal degrees (EPSG 4326/4979 order)."""
    parts = text.split()
    if len(parts) not in (2, 3):
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    return (lat, lon) if valid_position(lat, lon) else None


def parse_position_list(text: str, dimension: int) -> list[tuple[float, float]]:
    """A GML `posList`: coordinates in groups of `dimension` (2, or 3 with altitude)."""
    numbers = text.split()
    groups = (" ".join(numbers[i : i + dimension]) for i in range(0, len(numbers), dimension))
    return [p for p in (parse_position(group) for group in groups) if p is not None]


def parse_length(text: str, uom: str = "") -> float | None:
    """A length in metres; other units are refused rather than guessed."""
    value, _, unit = text.strip().partition(" ")
    unit = (unit or uom).strip().lower()
    if unit not in _METRE_UNITS:
        return None
    try:
        metres = float(value)
    except ValueError:
        return None
    return metres if math.isfinite(metres) and metres >= 0 else None


def centred_shape(kind: str, pos: str | None, length: str | None, raw: str, uom: str = "") -> Shape:
    """A shape reduced to its centre and the length bounding it, when both make sense."""
    position = parse_position(pos) if pos else None
    if position is None:
        return Shape(kind, None, None, None, raw)
    radius = parse_length(length, uom) if length is not None else None
    return Shape(kind, position[0], position[1], radius, raw)


def polygon_shape(kind: str, positions: Sequence[tuple[float, float]], raw: str) -> Shape:
    """A polygon reduced to the mean of its vertices and the farthest vertex from it."""
    if len(positions) > 3 and positions[0] == positions[-1]:
        # A closed GML ring repeats its first vertex; counting it twice would skew the mean.
        positions = positions[:-1]
    if len(positions) < 3:
        return Shape(kind, None, None, None, raw)
    lat = sum(p[0] for p in positions) / len(positions)
    lon = sum(p[1] for p in positions) / len(positions)
    radius = max(distance_m(lat, lon, p[0], p[1]) for p in positions)
    return Shape(kind, lat, lon, radius, raw)


def parse_location_info(value: str | bytes) -> Shape | LocationReference | Unparsed:
    """Parse ${GEOLOC_PROFILE(location_info)} into a shape or a by-reference URI."""
    text = as_text(value)
    if len(text) > MAX_HEADER_CHARS:
        return Unparsed(value, "too-large")
    pairs: dict[str, list[str]] = {}
    for match in itertools.islice(_PAIR.finditer(text), _MAX_PAIRS):
        value_text = match.group(2) if match.group(2) is not None else match.group(3)
        pairs.setdefault(match.group(1).lower(), []).append(value_text.strip())
    if not pairs:
        return Unparsed(value, "empty")
    if "uri" in pairs:
        return LocationReference(pairs["uri"][0])
    if "shape" not in pairs:
        return Shape("civicAddress", None, None, None, text)
    kind = pairs["shape"][0]
    if pairs.get("crs", ["2d"])[0].lower() not in ("2d", "3d", ""):
        return Shape(kind, None, None, None, text)
    positions = pairs.get("pos", []) + pairs.get("pos3d", [])
    if kind.lower() in _CENTRED:
        length_key = _CENTRED[kind.lower()]
        length = pairs[length_key][0] if length_key and length_key in pairs else None
        return centred_shape(kind, positions[0] if positions else None, length, text)
    if kind.lower() in _POLYGONS:
        dimension = 3 if pairs.get("crs", ["2d"])[0].lower() == "3d" else 2
        points = [p for p in (parse_position(pos) for pos in positions) if p is not None]
        for pos_list in pairs.get("poslist", []):
            points += parse_position_list(pos_list, dimension)
        return polygon_shape(kind, points, text)
    return Shape(kind, None, None, None, text)
