"""Tools for telecom engineers: load cell tables, and check a resolution before a call needs it.

    telephony cells import PATH        OpenCelliD CSV (optionally .gz) into the database
    telephony routing import PATH      cell -> regency table (mcc,mnc,area,cell,regency_code)
    telephony locate --pai ... --pani ...   the resolution exactly as the IVR would do it
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from telephony.config import Config, resolve_path
from telephony.location.importer import ImportReport, import_cells, import_routes
from telephony.location.region import load_regions
from telephony.location.resolve import CallHeaders, CallLocation, locate
from telephony.location.store import SqlCellDatabase, SqlRouteTable
from telephony.store import open_database


def _report(report: ImportReport, what: str) -> int:
    print(f"{report.path}: {report.imported} {what} imported, {report.skipped} rows skipped")
    for problem in report.problems:
        print(f"  line {problem.line}: {problem.reason}", file=sys.stderr)
    return 0 if report.imported else 1


def _cells_import(config: Config, args: argparse.Namespace) -> int:
    engine = open_database(config)
    try:
        return _report(import_cells(engine, args.path), "cells")
    finally:
        engine.dispose()


def _routing_import(config: Config, args: argparse.Namespace) -> int:
    engine = open_database(config)
    try:
        regions = load_regions(resolve_path(config.location.regions_file))
        return _report(import_routes(engine, args.path, regions=regions), "routes")
    finally:
        engine.dispose()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def describe(found: CallLocation) -> dict[str, Any]:
    """The whole resolution as plain data: for --json and for people checking a table."""
    return {
        "caller": _plain(found.identity),
        "source": str(found.source),
        "method": str(found.method),
        "confidence": str(found.confidence),
        "lat": found.lat,
        "lon": found.lon,
        "uncertainty_m": found.uncertainty_m,
        "cell": found.cell.label if found.cell else None,
        "cell_trusted": found.cell_trusted,
        "regency_code": found.regency_code,
        "queue": found.queue,
        "alternatives": list(found.alternatives),
        "references": list(found.evidence.references),
        "channel_vars": found.to_channel_vars(),
        "evidence": _plain(found.evidence),
    }


def _content_type(args: argparse.Namespace, body: bytes) -> str:
    if args.content_type:
        return str(args.content_type)
    return "application/pidf+xml" if body.lstrip().startswith(b"<") else ""


def _locate(config: Config, args: argparse.Namespace) -> int:
    body = args.body.read_bytes() if args.body else b""
    headers = CallHeaders(
        p_asserted_identity=args.pai,
        remote_party_id=args.rpid,
        from_header=args.from_header,
        privacy=args.privacy,
        p_access_network_info=args.pani,
        geolocation=args.geolocation,
        geoloc_location_info=args.location_info,
        content_type=_content_type(args, body),
        body=body,
    )
    engine = open_database(config)
    try:
        found = locate(
            headers,
            trusted_trunk=config.location.trunk_trusted and not args.untrusted,
            regions=load_regions(resolve_path(config.location.regions_file)),
            cells=SqlCellDatabase(engine),
            routes=SqlRouteTable(engine),
        )
    finally:
        engine.dispose()
    result = describe(found)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for key in ("source", "method", "confidence", "lat", "lon", "uncertainty_m", "cell",
                "cell_trusted", "regency_code", "queue", "alternatives", "references"):
        print(f"{key:>14}: {result[key]}")
    caller = result["caller"]
    print(f"{'caller':>14}: {caller['e164'] or caller['number']} ({caller['state']}, "
          f"from {caller['source']})")
    for name, value in result["channel_vars"].items():
        print(f"{name:>14}= {value}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cells = sub.add_parser("cells", help="the cell database (OpenCelliD format)")
    cells_actions = cells.add_subparsers(dest="action", required=True, metavar="ACTION")
    cells_import = cells_actions.add_parser("import", help="load an OpenCelliD CSV (or .csv.gz)")
    cells_import.add_argument("path", type=Path)
    cells_import.set_defaults(handler=_cells_import)

    routing = sub.add_parser("routing", help="the operator's cell -> regency routing table")
    routing_actions = routing.add_subparsers(dest="action", required=True, metavar="ACTION")
    routing_import = routing_actions.add_parser(
        "import", help="replace the table from a CSV: mcc,mnc,area,cell,regency_code"
    )
    routing_import.add_argument("path", type=Path)
    routing_import.set_defaults(handler=_routing_import)

    loc = sub.add_parser("locate", help="resolve a caller's location exactly as the IVR would")
    loc.add_argument("--pai", default="", help="P-Asserted-Identity value")
    loc.add_argument("--pani", default="", help="P-Access-Network-Info value")
    loc.add_argument("--rpid", default="", help="Remote-Party-ID value")
    loc.add_argument("--from", dest="from_header", default="", help="From value")
    loc.add_argument("--privacy", default="", help="Privacy value")
    loc.add_argument("--geolocation", default="", help="Geolocation header value")
    loc.add_argument("--location-info", default="",
                     help="Asterisk's ${GEOLOC_PROFILE(location_info)} string")
    loc.add_argument("--body", type=Path, help="the INVITE body (PIDF-LO or multipart)")
    loc.add_argument("--content-type", help="the body's Content-Type (with boundary)")
    loc.add_argument("--untrusted", action="store_true",
                     help="as if from a trunk whose cells may not steer routing")
    loc.add_argument("--json", action="store_true")
    loc.set_defaults(handler=_locate)
