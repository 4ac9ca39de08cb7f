from __future__ import annotations

import pytest

from telephony.location.cell import (
    AccessNetworkInfo,
    CellId,
    decode_cell,
    parse_access_network_info,
    reported_cell,
    routable_cell,
)
from telephony.location.unparsed import Unparsed


def _infos(header: str) -> tuple[AccessNetworkInfo, ...]:
    infos = parse_access_network_info(header)
    assert not isinstance(infos, Unparsed)
    return infos


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3GPP-GERAN; cgi-3gpp=510011F403A98; network-provided",
         CellId("GSM", "510", "01", 0x1F40, 0x3A98)),
        ("3GPP-UTRAN-FDD; utran-cell-id-3gpp=510014E210123456; network-provided",
         CellId("UMTS", "510", "01", 0x4E21, 0x0123456)),
        ("3GPP-UTRAN-TDD;utran-cell-id-3gpp=510014E210123456;network-provided",
         CellId("UMTS", "510", "01", 0x4E21, 0x0123456)),
        ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=5101012340012345; network-provided",
         CellId("LTE", "510", "10", 4660, 74565)),
        ("3GPP-E-UTRAN-TDD; utran-cell-id-3gpp=51010000A010012345; network-provided",
         CellId("LTE", "510", "10", 0x000A01, 0x0012345)),
        ("3GPP-NR-FDD; utran-cell-id-3gpp=51010000A01000012345; network-provided",
         CellId("NR", "510", "10", 0x000A01, 0x000012345)),
        ("3GPP-NR-TDD; utran-cell-id-3gpp=\"51010000A01000012345\"; network-provided",
         CellId("NR", "510", "10", 0x000A01, 0x000012345)),
    ],
)
def test_each_access_type(header: str, expected: CellId) -> None:
    (info,) = _infos(header)
    assert info.cell == expected
    assert info.network_provided


def test_ue_and_network_values_in_one_header() -> None:
    header = (
        "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=5101022010ABCDE0, "
        "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=5101012340012345; network-provided; "
        'local-time-zone="UTC+07:00"; daylight-saving-time="00"'
    )
    ue, network = _infos(header)
    assert not ue.network_provided and network.network_provided
    assert network.params["local-time-zone"] == "UTC+07:00"
    assert routable_cell((ue, network), trusted_trunk=True) == CellId("LTE", "510", "10", 4660,
                                                                       74565)
    assert routable_cell((ue, network), trusted_trunk=False) is None
    assert reported_cell((ue, network)) == ue.cell


def test_ue_provided_cell_is_recorded_not_routed() -> None:
    infos = _infos("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=5101012340012345")
    assert routable_cell(infos, trusted_trunk=True) is None
    assert reported_cell(infos) == CellId("LTE", "510", "10", 4660, 74565)


def test_wlan_access() -> None:
    (info,) = _infos("IEEE-802.11; i-wlan-node-id=0024a5b1c2d3; network-provided")
    assert info.cell is None
    assert info.wlan_node_id == "0024a5b1c2d3"
    assert routable_cell((info,), trusted_trunk=True) is None


def test_three_digit_mnc_outside_indonesia() -> None:
    assert decode_cell("LTE", "3104101234ABCDEF0") == CellId("LTE", "310", "410", 0x1234,
                                                             0xABCDEF0)
    # Indonesian MNCs are two digits, so this length cannot be an Indonesian E-UTRAN cell.
    assert decode_cell("LTE", "5101011234ABCDEF0") is None


@pytest.mark.parametrize(
    "header",
    [
        "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=51010XYZ; network-provided",
        "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=; network-provided",
        "3GPP-E-UTRAN-FDD; network-provided",
        "3GPP-GERAN; cgi-3gpp=5100112; network-provided",
    ],
)
def test_malformed_cell_values_are_kept_raw(header: str) -> None:
    (info,) = _infos(header)
    assert info.cell is None
    assert info.raw == header.strip()


def test_empty_and_oversized_headers_are_unparsed() -> None:
    assert isinstance(parse_access_network_info(""), Unparsed)
    huge = "3GPP-E-UTRAN-FDD;" + "x" * 20_000
    result = parse_access_network_info(huge)
    assert isinstance(result, Unparsed) and result.raw == huge


def test_cell_label() -> None:
    assert CellId("LTE", "510", "10", 4660, 74565).label == "LTE:510-10-4660-74565"
