"""The IVR's router: the caller's identity and location pick the regency's queue.

It plugs `locate()` into the FastAGI IVR (telephony.agi.Router). The IVR already guards it:
an exception or a slow answer sends the call to the default queue.
"""

from __future__ import annotations

from collections.abc import Mapping

from telephony.agi import RouteDecision
from telephony.contract import Var
from telephony.location.region import Regions
from telephony.location.resolve import CallHeaders, locate
from telephony.location.store import CellDatabase, RouteTable


def call_headers(session_vars: Mapping[str, str]) -> CallHeaders:
    """What the IVR read from the channel, in the resolver's terms."""
    return CallHeaders(
        p_asserted_identity=session_vars.get("P-Asserted-Identity", ""),
        remote_party_id=session_vars.get("Remote-Party-ID", ""),
        from_header=session_vars.get("From", ""),
        privacy=session_vars.get("Privacy", ""),
        p_access_network_info=session_vars.get("P-Access-Network-Info", ""),
        geolocation=session_vars.get("Geolocation", ""),
        geoloc_location_info=session_vars.get("location_info", ""),
    )


class LocationRouter:
    """Trust in a trunk's cells comes with the call (TRUNK_TRUSTED, set per trunk endpoint)."""

    def __init__(
        self, regions: Regions, cells: CellDatabase | None, routes: RouteTable | None
    ) -> None:
        self._regions = regions
        self._cells = cells
        self._routes = routes

    def route(self, session_vars: Mapping[str, str], emergency_type: str) -> RouteDecision:
        found = locate(
            call_headers(session_vars),
            trusted_trunk=session_vars.get("trunk_trusted") == "yes",
            regions=self._regions,
            cells=self._cells,
            routes=self._routes,
        )
        variables = found.to_channel_vars()
        variables["CALLER_STATE"] = str(found.identity.state)
        # Every cell the network reported is kept for the record, trusted or not.
        variables[Var.CELL_REPORTED] = found.cell.label if found.cell else ""
        return RouteDecision(found.queue, variables)
