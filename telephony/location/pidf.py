"""PIDF-LO documents (RFC 4119, RFC 5491): the geodetic shapes and the location method.

Parsed with defusedxml with DTDs, entities and external references all refused, so an XML
bomb or an external-entity trick comes back as Unparsed instead of being expanded. Point,
Circle, Sphere, Ellipse, Ellipsoid and Polygon reduce to a centre and an uncertainty;
every other shape, and civic addresses, are kept as raw XML.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from telephony.location.geolocation import (
    Shape,
    centred_shape,
    parse_position,
    parse_position_list,
    polygon_shape,
)
from telephony.location.unparsed import MAX_BODY_BYTES, Unparsed

NS_PIDF = "urn:ietf:params:xml:ns:pidf"
NS_GEOPRIV = "urn:ietf:params:xml:ns:pidf:geopriv10"
NS_GML = "http://www.opengis.net/gml"
NS_SHAPES = "http://www.opengis.net/pidflo/1.0"
_SRS_2D = "urn:ogc:def:crs:EPSG::4326"
_SRS_3D = "urn:ogc:def:crs:EPSG::4979"
_CENTRE_LENGTH = {
    "Point": None,
    "Circle": "radius",
    "Sphere": "radius",
    "Ellipse": "semiMajorAxis",
    "Ellipsoid": "semiMajorAxis",
}
_MAX_SHAPES = 16
# A real PIDF-LO nests about ten deep (presence/tuple/status/geopriv/location-info/Polygon/
# exterior/LinearRing/pos). ElementTree serialises and copies recursively, so a hostile
# document nested a thousand deep would raise RecursionError far from here: refuse it first.
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class PidfLocation:
    """The shapes of a PIDF-LO in document order, and its <method> (GPS, Cell, ...)."""

    shapes: tuple[Shape, ...]
    method: str | None

    @property
    def best(self) -> Shape | None:
        """The first shape that gives a position."""
        return next((shape for shape in self.shapes if shape.has_position), None)


def _local(tag: str) -> tuple[str, str]:
    namespace, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return namespace, name


def _text(element: ET.Element | None) -> str | None:
    return element.text.strip() if element is not None and element.text else None


def _shape(element: ET.Element) -> Shape:
    namespace, kind = _local(element.tag)
    raw = ET.tostring(element, encoding="unicode").strip()
    srs = element.get("srsName", "")
    if namespace not in (NS_GML, NS_SHAPES) or srs not in (_SRS_2D, _SRS_3D, ""):
        return Shape(kind, None, None, None, raw)
    if kind in _CENTRE_LENGTH:
        length_name = _CENTRE_LENGTH[kind]
        length = element.find(f"{{{NS_SHAPES}}}{length_name}") if length_name else None
        return centred_shape(
            kind,
            _text(element.find(f".//{{{NS_GML}}}pos")),
            _text(length),
            raw,
            uom=length.get("uom", "") if length is not None else "",
        )
    if kind in ("Polygon", "Prism"):
        dimension = 3 if srs == _SRS_3D else 2
        positions = [
            p
            for p in (parse_position(_text(e) or "") for e in element.iter(f"{{{NS_GML}}}pos"))
            if p
        ]
        for pos_list in element.iter(f"{{{NS_GML}}}posList"):
            positions += parse_position_list(_text(pos_list) or "", dimension)
        return polygon_shape(kind, positions, raw)
    return Shape(kind, None, None, None, raw)


def _deeper_than(root: ET.Element, limit: int) -> bool:
    """Whether any element sits more than `limit` levels below the root (iteratively)."""
    level: list[tuple[ET.Element, int]] = [(root, 1)]
    while level:
        element, depth = level.pop()
        if depth > limit:
            return True
        level.extend((child, depth + 1) for child in element)
    return False


def parse_pidf(document: str | bytes) -> PidfLocation | Unparsed:
    """Parse a PIDF-LO document into its shapes; never raises, never fetches anything."""
    data = document.encode("utf-8", errors="replace") if isinstance(document, str) else document
    if len(data) > MAX_BODY_BYTES:
        return Unparsed(document, "too-large")
    try:
        # Whitespace before the XML declaration is a sender's slip that expat refuses.
        root = fromstring(
            data.lstrip(), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException:
        return Unparsed(document, "xml-forbidden")
    except (ET.ParseError, ValueError, RecursionError):
        return Unparsed(document, "bad-xml")
    if _deeper_than(root, MAX_DEPTH):
        return Unparsed(document, "too-deep")
    if root.tag != f"{{{NS_PIDF}}}presence":
        return Unparsed(document, "not-pidf")
    shapes: list[Shape] = []
    for info in root.iter(f"{{{NS_GEOPRIV}}}location-info"):
        for child in info:
            if len(shapes) < _MAX_SHAPES:
                shapes.append(_shape(child))
    method = _text(root.find(f".//{{{NS_GEOPRIV}}}method"))
    if not shapes:
        return Unparsed(document, "no-location")
    return PidfLocation(tuple(shapes), method)
