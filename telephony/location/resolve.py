"""From a call's headers to a caller identity, a position and the regency that answers it.

The order of evidence: a location sent with the call (PIDF-LO body, else Asterisk's
GEOLOC_PROFILE), then the network-provided cell through the operator's routing table,
then the cell's position from the cell database, and finally the province default.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

import structlog

from telephony.contract import Var
from telephony.location.body import find_pidf
from telephony.location.cell import (
    AccessNetworkInfo,
    CellId,
    parse_access_network_info,
    reported_cell,
    routable_cell,
)
from telephony.location.geolocation import (
    LocationReference,
    Shape,
    parse_geolocation,
    parse_location_info,
)
from telephony.location.identity import CallerIdentity, parse_identity
from telephony.location.pidf import PidfLocation, parse_pidf
from telephony.location.region import NearestSeat, Regions
from telephony.location.store import CellDatabase, CellPosition, RouteTable
from telephony.location.unparsed import Unparsed

log = structlog.get_logger(__name__)

# Uncertainties (metres) separating a street-level fix from a neighbourhood and a district.
_PRECISE_M = 1_000.0
_COARSE_M = 5_000.0


class LocationSource(StrEnum):
    PIDF_LO = "pidf-lo"
    GEOLOC_PROFILE = "geoloc-profile"
    CELL_ROUTE = "cell-route"
    CELL_DATABASE = "cell-database"
    NONE = "none"


class ResolutionMethod(StrEnum):
    NEAREST_SEAT = "nearest-seat"
    ROUTING_TABLE = "routing-table"
    PROVINCE_DEFAULT = "province-default"


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class CallHeaders:
    """The raw inputs, as the AGI reads them from Asterisk (empty when absent)."""

    p_asserted_identity: str = ""
    remote_party_id: str = ""
    from_header: str = ""
    privacy: str = ""
    p_access_network_info: str = ""
    geolocation: str = ""
    geoloc_location_info: str = ""
    content_type: str = ""
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class LocationEvidence:
    """Everything parsed from the call, usable or not, for the record."""

    access_network: tuple[AccessNetworkInfo, ...] | Unparsed
    geolocation: tuple[LocationReference, ...] | Unparsed
    pidf: PidfLocation | Unparsed | None
    geoloc_profile: Shape | LocationReference | Unparsed

    @property
    def references(self) -> tuple[str, ...]:
        """Locations sent by reference: recorded for the operator, never dereferenced."""
        refs = [] if isinstance(self.geolocation, Unparsed) else [
            r.uri for r in self.geolocation if r.scheme != "cid"
        ]
        if isinstance(self.geoloc_profile, LocationReference):
            refs.append(self.geoloc_profile.uri)
        return tuple(dict.fromkeys(refs))


@dataclass(frozen=True, slots=True)
class CallLocation:
    """Who called, from where, and which regency's queue takes the call."""

    identity: CallerIdentity
    source: LocationSource
    method: ResolutionMethod
    confidence: Confidence
    lat: float | None
    lon: float | None
    uncertainty_m: float | None
    cell: CellId | None
    cell_trusted: bool
    regency_code: str | None
    province_code: str
    queue: str
    alternatives: tuple[str, ...]
    evidence: LocationEvidence

    def to_channel_vars(self) -> dict[str, str]:
        """Channel variables for the dialplan; empty strings where nothing is known."""
        return {
            Var.CALLER_E164: self.identity.e164 or "",
            Var.LOCATION_SOURCE: "" if self.source is LocationSource.NONE else self.source.value,
            Var.LOCATION_LAT: f"{self.lat:.6f}" if self.lat is not None else "",
            Var.LOCATION_LON: f"{self.lon:.6f}" if self.lon is not None else "",
            Var.LOCATION_RADIUS: str(round(self.uncertainty_m))
            if self.uncertainty_m is not None else "",
            Var.CELL_ID: self.cell.label if self.cell is not None and self.cell_trusted else "",
            Var.REGENCY_CODE: self.regency_code or "",
            # How the regency was chosen and the number's state, for the console's ring card.
            Var.LOCATION_METHOD: self.method.value,
            Var.LOCATION_CONFIDENCE: self.confidence.value,
            Var.CALLER_STATE: self.identity.state.value,
        }


@dataclass(frozen=True, slots=True)
class _Fix:
    source: LocationSource
    lat: float | None
    lon: float | None
    uncertainty_m: float | None


def gather_evidence(headers: CallHeaders) -> LocationEvidence:
    """Parse every location-bearing input; pure, and never raises."""
    geolocation = parse_geolocation(headers.geolocation)
    pidf: PidfLocation | Unparsed | None = None
    if headers.body:
        content_ids = [] if isinstance(geolocation, Unparsed) else [
            r.content_id for r in geolocation if r.content_id
        ]
        part = find_pidf(headers.content_type, headers.body, next(iter(content_ids), None))
        pidf = part if isinstance(part, Unparsed) else parse_pidf(part.data)
    return LocationEvidence(
        access_network=parse_access_network_info(headers.p_access_network_info),
        geolocation=geolocation,
        pidf=pidf,
        geoloc_profile=parse_location_info(headers.geoloc_location_info),
    )


def _sent_fixes(evidence: LocationEvidence) -> list[_Fix]:
    shapes: list[tuple[LocationSource, Shape | None]] = [
        (LocationSource.PIDF_LO,
         evidence.pidf.best if isinstance(evidence.pidf, PidfLocation) else None),
        (LocationSource.GEOLOC_PROFILE,
         evidence.geoloc_profile if isinstance(evidence.geoloc_profile, Shape) else None),
    ]
    return [
        _Fix(source, shape.lat, shape.lon, shape.radius_m)
        for source, shape in shapes
        if shape is not None and shape.has_position
    ]


def _seat_confidence(seat: NearestSeat, uncertainty_m: float | None) -> Confidence:
    if seat.ambiguous:
        return Confidence.LOW
    if uncertainty_m is None:
        return Confidence.MEDIUM
    if uncertainty_m > _COARSE_M:
        return Confidence.LOW
    if uncertainty_m <= _PRECISE_M and seat.distance_m <= _COARSE_M:
        return Confidence.HIGH
    return Confidence.MEDIUM


def _lookup_route(routes: RouteTable | None, cell: CellId) -> str | None:
    if routes is None:
        return None
    try:
        return routes.regency_for(cell)
    except Exception:
        # A broken store must not stop an emergency call; the next source takes over.
        log.exception("location.route_lookup_failed", cell=cell.label)
        return None


def _lookup_cell(cells: CellDatabase | None, cell: CellId) -> CellPosition | None:
    if cells is None:
        return None
    try:
        return cells.position(cell)
    except Exception:
        # As above: degrade to the province default rather than fail the call.
        log.exception("location.cell_lookup_failed", cell=cell.label)
        return None


@dataclass(frozen=True, slots=True)
class _Decision:
    fix: _Fix | None
    method: ResolutionMethod
    confidence: Confidence
    regency: str | None
    alternatives: tuple[str, ...] = ()


def _decide(
    evidence: LocationEvidence,
    trusted: CellId | None,
    regions: Regions,
    cells: CellDatabase | None,
    routes: RouteTable | None,
) -> _Decision:
    sent = _sent_fixes(evidence)
    for fix in sent:
        decision = _nearest(fix, regions)
        if decision is not None:
            return decision
    cell_fix: _Fix | None = None
    if trusted is not None:
        position = _lookup_cell(cells, trusted)
        if position is not None:
            cell_fix = _Fix(LocationSource.CELL_DATABASE, position.lat, position.lon,
                            float(position.range_m) if position.range_m > 0 else None)
        code = _lookup_route(routes, trusted)
        if code is not None and code in regions.regencies:
            # The operator's table decides; the cell's position only goes on the record.
            route_fix = (replace(cell_fix, source=LocationSource.CELL_ROUTE) if cell_fix
                         else _Fix(LocationSource.CELL_ROUTE, None, None, None))
            return _Decision(route_fix, ResolutionMethod.ROUTING_TABLE, Confidence.HIGH, code)
        if code is not None:
            log.warning("location.route_unknown_regency", cell=trusted.label, regency=code)
        decision = _nearest(cell_fix, regions) if cell_fix is not None else None
        if decision is not None:
            return decision
    fallback = sent[0] if sent else cell_fix
    return _Decision(fallback, ResolutionMethod.PROVINCE_DEFAULT, Confidence.NONE, None)


def _nearest(fix: _Fix, regions: Regions) -> _Decision | None:
    if fix.lat is None or fix.lon is None:
        return None
    seat = regions.nearest(fix.lat, fix.lon, fix.uncertainty_m or 0.0)
    if seat is None:
        return None
    return _Decision(fix, ResolutionMethod.NEAREST_SEAT, _seat_confidence(seat, fix.uncertainty_m),
                     seat.regency.code, seat.alternatives)


def locate(
    headers: CallHeaders,
    *,
    trusted_trunk: bool,
    regions: Regions,
    cells: CellDatabase | None = None,
    routes: RouteTable | None = None,
) -> CallLocation:
    """Identify the caller and pick the regency for the call; never raises on call data."""
    identity = parse_identity(
        headers.p_asserted_identity, headers.remote_party_id, headers.from_header,
        headers.privacy,
    )
    evidence = gather_evidence(headers)
    trusted = routable_cell(evidence.access_network, trusted_trunk=trusted_trunk)
    decision = _decide(evidence, trusted, regions, cells, routes)
    fix = decision.fix
    location = CallLocation(
        identity=identity,
        source=fix.source if fix else LocationSource.NONE,
        method=decision.method,
        confidence=decision.confidence,
        lat=fix.lat if fix else None,
        lon=fix.lon if fix else None,
        uncertainty_m=fix.uncertainty_m if fix else None,
        cell=trusted or reported_cell(evidence.access_network),
        cell_trusted=trusted is not None,
        regency_code=decision.regency,
        province_code=regions.province_code,
        queue=regions.queue_for(decision.regency),
        alternatives=decision.alternatives,
        evidence=evidence,
    )
    log.info(
        "location.resolved",
        source=location.source.value,
        method=location.method.value,
        confidence=location.confidence.value,
        regency=location.regency_code or "",
        queue=location.queue,
        caller=identity.state.value,
    )
    return location
