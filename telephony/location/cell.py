"""The caller's radio cell from P-Access-Network-Info (3GPP TS 24.229 §7.2A.4, RFC 7315).

Cell values are MCC + MNC + area code + cell identity, the last two in hexadecimal:
  3GPP-GERAN       cgi-3gpp            LAC 4 hex + CI 4 hex
  3GPP-UTRAN-*     utran-cell-id-3gpp  LAC 4 hex + UTRAN cell id 7 hex
  3GPP-E-UTRAN-*   utran-cell-id-3gpp  TAC 4 hex (6 hex when on a 5G core) + ECI 7 hex
  3GPP-NR-*        utran-cell-id-3gpp  TAC 6 hex + NCI 9 hex
Only values marked `network-provided` (added by the P-CSCF, not the handset) are fit for
routing; the others are recorded all the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from telephony.location.header import parse_params, split_values
from telephony.location.unparsed import MAX_HEADER_CHARS, Unparsed, as_text

INDONESIA_MCC = "510"

# OpenCelliD's radio names, so a parsed cell can be looked up in its export directly.
_RADIO_BY_PREFIX = (
    ("3GPP-GERAN", "GSM"),
    ("3GPP-UTRAN", "UMTS"),
    ("3GPP-E-UTRAN", "LTE"),
    ("3GPP-NR", "NR"),
)
# (area hex digits, cell hex digits) for each radio.
_LAYOUTS = {
    "GSM": ((4, 4),),
    "UMTS": ((4, 7),),
    "LTE": ((4, 7), (6, 7)),
    "NR": ((6, 9),),
}
_CELL_PARAMS = ("utran-cell-id-3gpp", "cgi-3gpp")
_CELL_VALUE = re.compile(r"[0-9]{3}[0-9A-Fa-f]{9,18}")


@dataclass(frozen=True, slots=True)
class CellId:
    """A cell's global identity; area and cell are the decimal values OpenCelliD uses."""

    radio: str
    mcc: str
    mnc: str
    area: int
    cell: int

    @property
    def label(self) -> str:
        """A stable text form for channel variables and logs, e.g. `LTE:510-10-4660-1`."""
        return f"{self.radio}:{self.mcc}-{self.mnc}-{self.area}-{self.cell}"


@dataclass(frozen=True, slots=True)
class AccessNetworkInfo:
    """One P-Access-Network-Info value: access type, its parameters and the decoded cell."""

    access_type: str
    network_provided: bool
    cell: CellId | None
    wlan_node_id: str | None
    raw: str
    params: dict[str, str | None] = field(default_factory=dict)


def radio_for(access_type: str) -> str | None:
    """The radio technology an access type names, or None for non-3GPP access."""
    upper = access_type.upper()
    return next((radio for prefix, radio in _RADIO_BY_PREFIX if upper.startswith(prefix)), None)


def decode_cell(radio: str, value: str) -> CellId | None:
    """Decode a cgi-3gpp or utran-cell-id-3gpp value; None when malformed or ambiguous."""
    value = value.strip()
    if not _CELL_VALUE.fullmatch(value):
        return None
    mcc, rest = value[:3], value[3:]
    # MNC length is not marked in the value; the fixed field widths settle it. Indonesian
    # networks all use two-digit MNCs.
    mnc_lengths = (2,) if mcc == INDONESIA_MCC else (2, 3)
    found: list[CellId] = []
    for mnc_len in mnc_lengths:
        mnc, tail = rest[:mnc_len], rest[mnc_len:]
        if not mnc.isdigit():
            continue
        for area_len, cell_len in _LAYOUTS[radio]:
            if len(tail) == area_len + cell_len:
                found.append(
                    CellId(radio, mcc, mnc, int(tail[:area_len], 16), int(tail[area_len:], 16))
                )
    return found[0] if len(found) == 1 else None


def _parse_one(value: str) -> AccessNetworkInfo:
    access_type, _, rest = value.partition(";")
    access_type = access_type.strip()
    params = parse_params(rest)
    radio = radio_for(access_type)
    cell: CellId | None = None
    if radio is not None:
        cell_value = next((params[name] for name in _CELL_PARAMS if params.get(name)), None)
        cell = decode_cell(radio, cell_value) if cell_value else None
    return AccessNetworkInfo(
        access_type=access_type,
        network_provided="network-provided" in params,
        cell=cell,
        wlan_node_id=params.get("i-wlan-node-id")
        if access_type.upper().startswith("IEEE-802.11")
        else None,
        raw=value,
        params=params,
    )


def parse_access_network_info(value: str | bytes) -> tuple[AccessNetworkInfo, ...] | Unparsed:
    """Every access-net-spec in a P-Access-Network-Info header, in the order sent."""
    text = as_text(value)
    if len(text) > MAX_HEADER_CHARS:
        return Unparsed(value, "too-large")
    infos = tuple(_parse_one(item) for item in split_values(text))
    if not any(info.access_type for info in infos):
        return Unparsed(value, "empty")
    return infos


def routable_cell(
    infos: tuple[AccessNetworkInfo, ...] | Unparsed, *, trusted_trunk: bool
) -> CellId | None:
    """The first cell we may route on: network-provided, and only from a trusted trunk."""
    if isinstance(infos, Unparsed) or not trusted_trunk:
        return None
    return next((i.cell for i in infos if i.network_provided and i.cell is not None), None)


def reported_cell(infos: tuple[AccessNetworkInfo, ...] | Unparsed) -> CellId | None:
    """The first cell reported at all, trusted or not, for the record."""
    if isinstance(infos, Unparsed):
        return None
    return next((i.cell for i in infos if i.cell is not None), None)
