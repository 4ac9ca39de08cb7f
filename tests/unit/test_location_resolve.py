from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from telephony.db import Base, make_engine
from telephony.location.cell import CellId
from telephony.location.identity import IdentityState
from telephony.location.importer import import_cells, import_routes
from telephony.location.region import Regions, load_regions
from telephony.location.resolve import (
    CallHeaders,
    Confidence,
    LocationSource,
    ResolutionMethod,
    locate,
)
from telephony.location.store import (
    CellPosition,
    CellRecord,
    CellRouteRecord,
    MemoryCellDatabase,
    MemoryRouteTable,
    SqlCellDatabase,
    SqlRouteTable,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "location"
PAI = "<sip:+6281234567890@ims.mnc010.mcc510.3gppnetwork.org;user=phone>, <tel:+6281234567890>"
FROM = '"081234567890" <sip:081234567890@10.20.30.40;user=phone>;tag=as5f3c1a'
MALANG_PANI = (
    "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=51010220100ABCDE, "
    "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=51010220100ABCDE; network-provided"
)
GEOLOCATION = "<cid:target123@ims.mnc010.mcc510.3gppnetwork.org>"
MULTIPART = 'multipart/mixed;boundary="boundary1"'
SURABAYA_POINT = 'shape="Point",crs="2d",pos="-7.2458 112.7378"'


@pytest.fixture(scope="module")
def regions() -> Regions:
    return load_regions(ROOT / "config" / "regions.toml")


@pytest.fixture
def engine(tmp_path: Path, regions: Regions) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'location.db'}")
    tables = [Base.metadata.tables[t.__tablename__] for t in (CellRecord, CellRouteRecord)]
    Base.metadata.create_all(engine, tables=tables)
    import_cells(engine, ROOT / "config" / "cells.example.csv")
    import_routes(engine, ROOT / "config" / "routing.example.csv", regions=regions)
    return engine


def test_pidf_in_multipart_body(regions: Regions) -> None:
    headers = CallHeaders(
        p_asserted_identity=PAI, from_header=FROM, geolocation=GEOLOCATION,
        content_type=MULTIPART, body=(DATA / "invite_multipart.bin").read_bytes(),
    )
    location = locate(headers, trusted_trunk=True, regions=regions)
    assert location.source is LocationSource.PIDF_LO
    assert location.method is ResolutionMethod.NEAREST_SEAT
    assert location.confidence is Confidence.HIGH
    assert location.regency_code == "35.73"
    assert location.queue == "reg-3573"
    assert location.to_channel_vars() == {
        "CALLER_E164": "+6281234567890",
        "LOCATION_SOURCE": "pidf-lo",
        "LOCATION_LAT": "-7.982600",
        "LOCATION_LON": "112.630800",
        "LOCATION_RADIUS": "18",
        "CELL_ID": "",
        "REGENCY_CODE": "35.73",
        "LOCATION_METHOD": "nearest-seat",
        "LOCATION_CONFIDENCE": "high",
        "CALLER_STATE": "available",
    }


def test_geoloc_profile_from_asterisk(regions: Regions) -> None:
    headers = CallHeaders(
        p_asserted_identity=PAI,
        geoloc_location_info='shape="Circle",crs="2d",pos="-7.2575 112.7521",radius="30"',
    )
    location = locate(headers, trusted_trunk=True, regions=regions)
    assert (location.source, location.regency_code, location.uncertainty_m) == (
        LocationSource.GEOLOC_PROFILE, "35.78", 30.0)


def test_point_without_uncertainty_is_medium_confidence(regions: Regions) -> None:
    location = locate(CallHeaders(geoloc_location_info=SURABAYA_POINT), trusted_trunk=True,
                      regions=regions)
    assert location.confidence is Confidence.MEDIUM
    assert location.to_channel_vars()["LOCATION_RADIUS"] == ""


def test_network_cell_through_routing_table(regions: Regions, engine: Engine) -> None:
    headers = CallHeaders(p_asserted_identity=PAI, p_access_network_info=MALANG_PANI)
    location = locate(headers, trusted_trunk=True, regions=regions,
                      cells=SqlCellDatabase(engine), routes=SqlRouteTable(engine))
    assert location.source is LocationSource.CELL_ROUTE
    assert location.method is ResolutionMethod.ROUTING_TABLE
    assert location.confidence is Confidence.HIGH
    assert location.regency_code == "35.07"
    assert location.cell == CellId("LTE", "510", "10", 8705, 703710)
    assert location.to_channel_vars()["CELL_ID"] == "LTE:510-10-8705-703710"
    # The cell's estimated position goes on the record.
    assert (location.lat, location.lon, location.uncertainty_m) == (-8.13, 112.575, 2000.0)


def test_example_data_cell_and_pidf_give_different_regencies(
    regions: Regions, engine: Engine
) -> None:
    """The integration scenario: PAI + E-UTRAN cell vs PAI + PIDF-LO point."""
    cells, routes = SqlCellDatabase(engine), SqlRouteTable(engine)
    by_cell = locate(CallHeaders(p_asserted_identity=PAI, p_access_network_info=MALANG_PANI),
                     trusted_trunk=True, regions=regions, cells=cells, routes=routes)
    by_pidf = locate(CallHeaders(p_asserted_identity=PAI, geolocation="<cid:loc@x>",
                                 content_type="application/pidf+xml",
                                 body=(DATA / "pidf_point.xml").read_bytes()),
                     trusted_trunk=True, regions=regions, cells=cells, routes=routes)
    assert (by_cell.regency_code, by_pidf.regency_code) == ("35.07", "35.78")
    assert by_cell.queue != by_pidf.queue


def test_location_sent_with_the_call_beats_the_cell(regions: Regions, engine: Engine) -> None:
    headers = CallHeaders(p_asserted_identity=PAI, p_access_network_info=MALANG_PANI,
                          geoloc_location_info=SURABAYA_POINT)
    location = locate(headers, trusted_trunk=True, regions=regions,
                      cells=SqlCellDatabase(engine), routes=SqlRouteTable(engine))
    assert (location.source, location.regency_code) == (LocationSource.GEOLOC_PROFILE, "35.78")
    assert location.cell_trusted


def test_cell_database_when_no_route(regions: Regions) -> None:
    cells = MemoryCellDatabase(
        [CellPosition("LTE", 510, 10, 8705, 703710, -8.130, 112.575, 2000, 17)]
    )
    location = locate(CallHeaders(p_access_network_info=MALANG_PANI), trusted_trunk=True,
                      regions=regions, cells=cells, routes=MemoryRouteTable({}))
    assert location.source is LocationSource.CELL_DATABASE
    assert location.method is ResolutionMethod.NEAREST_SEAT
    assert location.regency_code == "35.07"
    assert location.confidence is Confidence.MEDIUM


def test_route_to_an_unknown_regency_is_ignored(regions: Regions) -> None:
    routes = MemoryRouteTable({(510, 10, 8705, 703710): "35.99"})
    location = locate(CallHeaders(p_access_network_info=MALANG_PANI), trusted_trunk=True,
                      regions=regions, routes=routes)
    assert location.method is ResolutionMethod.PROVINCE_DEFAULT


@pytest.mark.parametrize(
    ("pani", "trusted_trunk"),
    [
        (MALANG_PANI, False),
        ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=51010220100ABCDE", True),
    ],
)
def test_untrusted_cells_are_recorded_not_routed(
    regions: Regions, engine: Engine, pani: str, trusted_trunk: bool
) -> None:
    location = locate(CallHeaders(p_access_network_info=pani), trusted_trunk=trusted_trunk,
                      regions=regions, cells=SqlCellDatabase(engine),
                      routes=SqlRouteTable(engine))
    assert location.method is ResolutionMethod.PROVINCE_DEFAULT
    assert location.cell == CellId("LTE", "510", "10", 8705, 703710)
    assert not location.cell_trusted
    assert location.to_channel_vars()["CELL_ID"] == ""


def test_no_location_falls_back_to_the_province(regions: Regions) -> None:
    location = locate(CallHeaders(from_header=FROM), trusted_trunk=True, regions=regions)
    assert location.method is ResolutionMethod.PROVINCE_DEFAULT
    assert location.confidence is Confidence.NONE
    assert location.regency_code is None
    assert location.queue == "prov-35"
    assert location.to_channel_vars() == {
        "CALLER_E164": "+6281234567890", "LOCATION_SOURCE": "", "LOCATION_LAT": "",
        "LOCATION_LON": "", "LOCATION_RADIUS": "", "CELL_ID": "", "REGENCY_CODE": "",
        "LOCATION_METHOD": "province-default", "LOCATION_CONFIDENCE": "none",
        "CALLER_STATE": "available",
    }


def test_regency_without_its_own_queue(regions: Regions) -> None:
    jember = 'shape="Circle",crs="2d",pos="-8.172 113.700",radius="50"'
    location = locate(CallHeaders(geoloc_location_info=jember), trusted_trunk=True,
                      regions=regions)
    assert (location.regency_code, location.queue) == ("35.09", "prov-35")


def test_position_outside_the_province_is_kept(regions: Regions) -> None:
    jakarta = 'shape="Circle",crs="2d",pos="-6.2088 106.8456",radius="10"'
    location = locate(CallHeaders(geoloc_location_info=jakarta), trusted_trunk=True,
                      regions=regions)
    assert location.method is ResolutionMethod.PROVINCE_DEFAULT
    assert location.source is LocationSource.GEOLOC_PROFILE
    assert location.to_channel_vars()["LOCATION_LAT"] == "-6.208800"


def test_location_by_reference_is_recorded_not_fetched(regions: Regions) -> None:
    headers = CallHeaders(
        geolocation="<https://lis.example.net/loc/8a7b>, <sip:loc@lis.example.net>",
        geoloc_location_info='URI="https://lis.example.net/loc/8a7b"',
    )
    location = locate(headers, trusted_trunk=True, regions=regions)
    assert location.method is ResolutionMethod.PROVINCE_DEFAULT
    assert location.evidence.references == (
        "https://lis.example.net/loc/8a7b", "sip:loc@lis.example.net")


def test_bromo_with_a_coarse_fix_is_low_confidence(regions: Regions) -> None:
    coarse = 'shape="Circle",crs="2d",pos="-7.942 112.953",radius="3000"'
    location = locate(CallHeaders(geoloc_location_info=coarse), trusted_trunk=True,
                      regions=regions)
    assert location.regency_code == "35.13"
    assert location.confidence is Confidence.LOW
    assert {"35.14", "35.08"} <= set(location.alternatives)


def test_withheld_caller_keeps_the_asserted_number(regions: Regions) -> None:
    headers = CallHeaders(
        p_asserted_identity=PAI, privacy="id",
        from_header='"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
    )
    location = locate(headers, trusted_trunk=True, regions=regions)
    assert location.identity.state is IdentityState.WITHHELD
    assert location.to_channel_vars()["CALLER_E164"] == "+6281234567890"


class _Broken:
    def position(self, cell: CellId) -> CellPosition | None:
        raise RuntimeError("database is down")

    def regency_for(self, cell: CellId) -> str | None:
        raise RuntimeError("database is down")


def test_broken_stores_do_not_fail_the_call(regions: Regions) -> None:
    location = locate(CallHeaders(p_access_network_info=MALANG_PANI), trusted_trunk=True,
                      regions=regions, cells=_Broken(), routes=_Broken())
    assert location.method is ResolutionMethod.PROVINCE_DEFAULT
    assert location.queue == "prov-35"
