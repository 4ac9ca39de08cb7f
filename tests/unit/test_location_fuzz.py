"""No parser raises, whatever arrives; and each stays fast on a 10 kB header."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.location.body import find_pidf
from telephony.location.cell import parse_access_network_info
from telephony.location.geolocation import parse_geolocation, parse_location_info
from telephony.location.identity import parse_identity
from telephony.location.pidf import parse_pidf
from telephony.location.region import Regions, load_regions
from telephony.location.resolve import CallHeaders, CallLocation, locate
from telephony.location.store import CellPosition, MemoryCellDatabase, MemoryRouteTable

ROOT = Path(__file__).resolve().parents[2]
REGIONS: Regions = load_regions(ROOT / "config" / "regions.toml")

# Any text, lone surrogates included (what a lenient decoder may hand us).
ANY_TEXT = st.text(st.characters(exclude_categories=()))
# Pieces of real headers, so that examples reach past the first syntax check.
FRAGMENTS = st.sampled_from([
    "<", ">", '"', "\\", ";", ",", "=", ":", "@", " ", "sip:", "tel:", "cid:", "+62", "0812",
    "34567890", "anonymous", "anonymous.invalid", "user=phone", "privacy=full",
    "phone-context=+62", "3GPP-E-UTRAN-FDD", "3GPP-NR-TDD", "3GPP-GERAN", "IEEE-802.11",
    "utran-cell-id-3gpp", "cgi-3gpp", "network-provided", "51010", "1234", "0ABCDEF", "FFFF",
    "shape", "Circle", "Polygon", "pos", "posList", "radius", "crs", "2d", "3d", "URI",
    '"-7.2575 112.7521"', "-7.9", "112.6", "nan", "1e999", "https://lis.example/x",
])
HEADERISH = st.lists(FRAGMENTS, max_size=40).map("".join)
TEXTS = st.one_of(ANY_TEXT, HEADERISH)
XML_FRAGMENTS = st.sampled_from([
    '<presence xmlns="urn:ietf:params:xml:ns:pidf">', "</presence>",
    '<gp:location-info xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10">', "</gp:location-info>",
    '<gs:Circle xmlns:gs="http://www.opengis.net/pidflo/1.0" srsName="urn:ogc:def:crs:EPSG::4326">',
    "</gs:Circle>", '<gml:Point xmlns:gml="http://www.opengis.net/gml">', "</gml:Point>",
    '<gml:pos xmlns:gml="http://www.opengis.net/gml">', "</gml:pos>", "-7.2 112.7", "1e400",
    '<gs:radius xmlns:gs="http://www.opengis.net/pidflo/1.0" uom="x">', "</gs:radius>",
    "<!DOCTYPE a [<!ENTITY b 'c'>]>", "&b;", "<![CDATA[x]]>", "<?pi x?>", "\x00", "&#0;",
])
XMLISH = st.lists(XML_FRAGMENTS, max_size=30).map("".join)


@settings(max_examples=300)
@given(TEXTS, TEXTS, TEXTS, TEXTS)
def test_identity_never_raises(pai: str, rpid: str, from_: str, privacy: str) -> None:
    parse_identity(pai, rpid, from_, privacy)


@settings(max_examples=300)
@given(st.binary(), st.binary(), st.binary(), st.binary())
def test_identity_never_raises_on_bytes(pai: bytes, rpid: bytes, from_: bytes,
                                        privacy: bytes) -> None:
    parse_identity(pai, rpid, from_, privacy)


@pytest.mark.parametrize(
    "parser", [parse_access_network_info, parse_geolocation, parse_location_info, parse_pidf]
)
@settings(max_examples=300)
@given(data=st.one_of(TEXTS, XMLISH, st.binary(), XMLISH.map(str.encode)))
def test_parsers_never_raise(parser: Callable[[Any], object], data: str | bytes) -> None:
    parser(data)


@settings(max_examples=300)
@given(TEXTS, st.one_of(st.binary(), XMLISH.map(str.encode)), st.none() | ANY_TEXT)
def test_body_never_raises(content_type: str, body: bytes, content_id: str | None) -> None:
    find_pidf(content_type, body, content_id)
    find_pidf("multipart/mixed;boundary=b", b"--b\r\n" + body + b"\r\n--b--", content_id)


CELLS = MemoryCellDatabase([CellPosition("LTE", 510, 10, 4660, 74565, -7.265, 112.74, 1000, 42)])
ROUTES = MemoryRouteTable({(510, 10, 4660, None): "35.78"})


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        CallHeaders,
        p_asserted_identity=TEXTS, remote_party_id=TEXTS, from_header=TEXTS, privacy=TEXTS,
        p_access_network_info=TEXTS, geolocation=TEXTS, geoloc_location_info=TEXTS,
        content_type=TEXTS, body=st.binary(),
    ),
    st.booleans(),
)
def test_locate_never_raises(headers: CallHeaders, trusted_trunk: bool) -> None:
    location = locate(headers, trusted_trunk=trusted_trunk, regions=REGIONS, cells=CELLS,
                      routes=ROUTES)
    assert isinstance(location, CallLocation)
    assert all(isinstance(v, str) for v in location.to_channel_vars().values())


TEN_KB = 10 * 1024
BIG_HEADERS = {
    "repeated values": ", ".join(
        ['"Budi" <sip:+6281234567890@ims.mnc010.mcc510.3gppnetwork.org;user=phone>'] * 200
    )[:TEN_KB],
    "repeated cells": ", ".join(
        ["3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=5101012340012345; network-provided"] * 200
    )[:TEN_KB],
    "parameters": "a=b;" * (TEN_KB // 4),
    "open quote": '"' + "a" * TEN_KB,
    "quotes": '"' * TEN_KB,
    "commas": "," * TEN_KB,
    "no separators": "x" * TEN_KB,
    "pairs": 'shape="Polygon",' + 'pos="-7.2 112.7",' * (TEN_KB // 18),
}
PARSERS: dict[str, Callable[[str], object]] = {
    "identity": parse_identity,
    "access network": parse_access_network_info,
    "geolocation": parse_geolocation,
    "location info": parse_location_info,
}


@pytest.mark.parametrize("header", BIG_HEADERS.values(), ids=BIG_HEADERS.keys())
@pytest.mark.parametrize("parser", PARSERS.values(), ids=PARSERS.keys())
def test_ten_kilobyte_header_is_fast(parser: Callable[[str], object], header: str) -> None:
    best = min(_timed(parser, header) for _ in range(5))
    # About 1 ms is typical here; the bound leaves room for a loaded CI machine.
    assert best < 0.010


def _timed(parser: Callable[[str], object], header: str) -> float:
    start = time.perf_counter()
    parser(header)
    return time.perf_counter() - start
