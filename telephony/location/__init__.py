"""Caller identity and caller location for 112 calls, and the regency that answers them.

The IVR builds a CallHeaders from what the AGI reads and calls `locate()`; the result
carries the caller's E.164 number, the position and its source, the regency and its
queue, and `to_channel_vars()` for the dialplan. See config/README.md for the data files.
"""

from __future__ import annotations

from telephony.location.cell import AccessNetworkInfo, CellId, parse_access_network_info
from telephony.location.geolocation import (
    LocationReference,
    Shape,
    parse_geolocation,
    parse_location_info,
)
from telephony.location.identity import (
    CallerIdentity,
    IdentitySource,
    IdentityState,
    parse_identity,
)
from telephony.location.importer import (
    DataImportError,
    ImportReport,
    RowProblem,
    import_cells,
    import_routes,
)
from telephony.location.pidf import PidfLocation, parse_pidf
from telephony.location.region import (
    Regency,
    RegionDataError,
    Regions,
    load_regions,
    queue_name,
)
from telephony.location.resolve import (
    CallHeaders,
    CallLocation,
    Confidence,
    LocationEvidence,
    LocationSource,
    ResolutionMethod,
    gather_evidence,
    locate,
)
from telephony.location.store import (
    CellDatabase,
    CellPosition,
    CellRecord,
    CellRouteRecord,
    MemoryCellDatabase,
    MemoryRouteTable,
    RouteTable,
    SqlCellDatabase,
    SqlRouteTable,
)
from telephony.location.unparsed import Unparsed

__all__ = [
    "AccessNetworkInfo",
    "CallHeaders",
    "CallLocation",
    "CallerIdentity",
    "CellDatabase",
    "CellId",
    "CellPosition",
    "CellRecord",
    "CellRouteRecord",
    "Confidence",
    "DataImportError",
    "IdentitySource",
    "IdentityState",
    "ImportReport",
    "LocationEvidence",
    "LocationReference",
    "LocationSource",
    "MemoryCellDatabase",
    "MemoryRouteTable",
    "PidfLocation",
    "Regency",
    "RegionDataError",
    "Regions",
    "ResolutionMethod",
    "RouteTable",
    "RowProblem",
    "Shape",
    "SqlCellDatabase",
    "SqlRouteTable",
    "Unparsed",
    "gather_evidence",
    "import_cells",
    "import_routes",
    "load_regions",
    "locate",
    "parse_access_network_info",
    "parse_geolocation",
    "parse_identity",
    "parse_location_info",
    "parse_pidf",
    "queue_name",
]
