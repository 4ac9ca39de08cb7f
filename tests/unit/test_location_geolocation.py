from __future__ import annotations

import pytest

from telephony.location.geolocation import (
    LocationReference,
    Shape,
    parse_geolocation,
    parse_location_info,
)
from telephony.location.unparsed import Unparsed


def test_geoloc_profile_circle() -> None:
    text = 'shape="Circle",crs="2d",pos="-7.2575 112.7521",radius="30"'
    assert parse_location_info(text) == Shape("Circle", -7.2575, 112.7521, 30.0, text)


def test_geoloc_profile_point_has_no_uncertainty() -> None:
    shape = parse_location_info('shape="Point",crs="2d",pos="-7.9 112.6"')
    assert isinstance(shape, Shape)
    assert (shape.lat, shape.lon, shape.radius_m) == (-7.9, 112.6, None)


def test_geoloc_profile_configured_style_and_3d() -> None:
    # geolocation.conf style, as in Asterisk's documentation: spaces, unquoted names.
    shape = parse_location_info('shape=Sphere, crs=3d, pos="-7.9 112.6 1200" radius="20"')
    assert isinstance(shape, Shape)
    assert (shape.kind, shape.lat, shape.lon, shape.radius_m) == ("Sphere", -7.9, 112.6, 20.0)


def test_geoloc_profile_ellipse_and_polygon() -> None:
    ellipse = parse_location_info(
        'shape="Ellipse",crs="2d",pos="-7.447 112.718",semiMajorAxis="250",'
        'semiMinorAxis="120",orientation="35 degrees"'
    )
    assert isinstance(ellipse, Shape) and ellipse.radius_m == 250.0
    polygon = parse_location_info(
        'shape="Polygon",crs="2d",posList="-7.870 112.520 -7.870 112.535 -7.885 112.535 '
        '-7.885 112.520 -7.870 112.520"'
    )
    assert isinstance(polygon, Shape)
    assert polygon.lat == pytest.approx(-7.8775)
    assert polygon.lon == pytest.approx(112.5275)
    assert 1000 < (polygon.radius_m or 0) < 1200


def test_geoloc_profile_other_shapes_and_civic_are_raw() -> None:
    arc = parse_location_info(
        'shape="ArcBand",crs="2d",pos="-7.2 112.7",innerRadius="300",outerRadius="900",'
        'startAngle="40 degrees",openingAngle="60 degrees"'
    )
    assert isinstance(arc, Shape) and arc.kind == "ArcBand" and not arc.has_position
    civic = parse_location_info('lang="id",country="ID",A1="Jawa Timur",A3="Surabaya"')
    assert isinstance(civic, Shape) and civic.kind == "civicAddress" and not civic.has_position


def test_geoloc_profile_by_reference() -> None:
    ref = parse_location_info('URI="https://lis.example.net/loc/8a7b?x=1"')
    assert ref == LocationReference("https://lis.example.net/loc/8a7b?x=1")


@pytest.mark.parametrize(
    "text",
    [
        'shape="Circle",crs="2d",pos="-97.0 112.7",radius="30"',
        'shape="Circle",crs="2d",pos="nan 112.7",radius="30"',
        'shape="Point",crs="unknown",pos="-7.2 112.7"',
    ],
)
def test_impossible_positions_are_not_used(text: str) -> None:
    shape = parse_location_info(text)
    assert isinstance(shape, Shape) and not shape.has_position


def test_non_metre_radius_is_unknown() -> None:
    shape = parse_location_info('shape="Circle",crs="2d",pos="-7.2 112.7",radius="3 km"')
    assert isinstance(shape, Shape) and shape.has_position and shape.radius_m is None


def test_empty_location_info_is_unparsed() -> None:
    assert isinstance(parse_location_info(""), Unparsed)


def test_geolocation_header_cid_and_references() -> None:
    refs = parse_geolocation(
        "<cid:target123@ims.mnc010.mcc510.3gppnetwork.org>;inserted-by=\"sip:lrf.example\", "
        "<https://lis.example.net/loc/8a7b>, <sip:loc@lis.example.net>"
    )
    assert not isinstance(refs, Unparsed)
    assert [r.scheme for r in refs] == ["cid", "https", "sip"]
    assert refs[0].content_id == "target123@ims.mnc010.mcc510.3gppnetwork.org"
    assert refs[0].params == {"inserted-by": "sip:lrf.example"}
    assert refs[1].content_id is None


def test_geolocation_cid_is_percent_decoded() -> None:
    refs = parse_geolocation("<cid:loc%40host.example>")
    assert not isinstance(refs, Unparsed) and refs[0].content_id == "loc@host.example"


def test_bad_geolocation_header() -> None:
    assert isinstance(parse_geolocation("no uri here"), Unparsed)
