"""Loading the cell database (OpenCelliD CSV) and the operator's cell routes into SQL.

Each import replaces its table in one transaction, so lookups never see half a file. The
tables themselves come from the schema migrations, like every other store's.
Bad cell rows are skipped and counted with their line numbers (OpenCelliD exports carry
some); a bad route row stops the import, since routes decide where emergency calls go.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import SQLAlchemyError

from telephony.errors import TelephonyError
from telephony.location.geometry import valid_position
from telephony.location.region import Regions
from telephony.location.store import CellRecord, CellRouteRecord, RouteKey

CELL_COLUMNS = ("radio", "mcc", "net", "area", "cell", "unit", "lon", "lat", "range",
                "samples", "changeable", "created", "updated", "averageSignal")
ROUTE_COLUMNS = ("mcc", "mnc", "area", "cell", "regency_code")
RADIOS = frozenset({"GSM", "UMTS", "LTE", "NR", "CDMA"})
_MAX_PROBLEMS = 100
_BATCH = 5_000


class DataImportError(TelephonyError):
    """A file that cannot be imported at all; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did; `problems` holds the first few skipped rows, `skipped` all."""

    path: str
    imported: int
    skipped: int
    problems: tuple[RowProblem, ...]


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _int(text: str, low: int, high: int, name: str) -> int:
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name} {value} out of range")
    return value


def _cell_row(row: list[str]) -> dict[str, Any]:
    if len(row) != len(CELL_COLUMNS):
        raise ValueError(f"expected {len(CELL_COLUMNS)} fields, got {len(row)}")
    f = dict(zip(CELL_COLUMNS, (field.strip() for field in row), strict=True))
    if f["radio"] not in RADIOS:
        raise ValueError(f"unknown radio {f['radio']!r}")
    lat, lon = float(f["lat"]), float(f["lon"])
    if not valid_position(lat, lon):
        raise ValueError("invalid position")
    return {
        "radio": f["radio"],
        "mcc": _int(f["mcc"], 1, 999, "mcc"),
        "mnc": _int(f["net"], 0, 999, "net"),
        "area": _int(f["area"], 0, 2**24, "area"),
        "cell": _int(f["cell"], 0, 2**36, "cell"),
        "unit": int(f["unit"]) if f["unit"] else None,
        "lon": lon,
        "lat": lat,
        "range_m": _int(f["range"] or "0", 0, 10**7, "range"),
        "samples": _int(f["samples"] or "0", 0, 2**31, "samples"),
        "changeable": f["changeable"] == "1",
        "created": int(f["created"] or 0),
        "updated": int(f["updated"] or 0),
        "average_signal": int(f["averageSignal"]) if f["averageSignal"] else None,
    }


def read_cells(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, row) for each data row of an OpenCelliD CSV (plain or .gz, header optional);
    the row is a reason string when it cannot be used."""
    with _open_text(Path(path)) as handle:
        reader = csv.reader(handle)
        for row in reader:
            if reader.line_num == 1 and row and row[0].strip().lower() == "radio":
                if tuple(c.strip() for c in row) != CELL_COLUMNS:
                    raise DataImportError(f"{path}:1: not an OpenCelliD header: {row}")
                continue
            try:
                yield reader.line_num, _cell_row(row)
            except ValueError as exc:
                yield reader.line_num, str(exc)


def import_cells(engine: Engine, path: str | Path) -> ImportReport:
    """Replace the cell database with an OpenCelliD CSV, skipping and counting bad rows."""
    imported, skipped = 0, 0
    problems: list[RowProblem] = []
    try:
        with engine.begin() as conn:
            conn.execute(delete(CellRecord))
            batch: list[dict[str, Any]] = []
            for line, row in read_cells(path):
                if isinstance(row, str):
                    skipped += 1
                    if len(problems) < _MAX_PROBLEMS:
                        problems.append(RowProblem(line, row))
                    continue
                batch.append(row)
                if len(batch) >= _BATCH:
                    conn.execute(insert(CellRecord), batch)
                    imported += len(batch)
                    batch = []
            if batch:
                conn.execute(insert(CellRecord), batch)
                imported += len(batch)
    except (OSError, UnicodeDecodeError, csv.Error, SQLAlchemyError) as exc:
        raise DataImportError(f"{path}: {exc}") from exc
    return ImportReport(str(path), imported, skipped, tuple(problems))


def _route_row(row: dict[str, str], regions: Regions) -> dict[str, Any]:
    code = (row.get("regency_code") or "").strip()
    if code not in regions.regencies:
        raise ValueError(f"unknown regency code {code!r}")
    cell = (row.get("cell") or "").strip()
    return {
        "mcc": _int((row.get("mcc") or "").strip(), 1, 999, "mcc"),
        "mnc": _int((row.get("mnc") or "").strip(), 0, 999, "mnc"),
        "area": _int((row.get("area") or "").strip(), 0, 2**24, "area"),
        "cell": _int(cell, 0, 2**36, "cell") if cell else None,
        "regency_code": code,
    }


def import_routes(engine: Engine, path: str | Path, *, regions: Regions) -> ImportReport:
    """Replace the cell routes with a CSV `mcc,mnc,area,cell,regency_code`; an empty cell
    routes the whole LAC/TAC. Any bad row raises DataImportError and nothing changes."""
    rows: list[dict[str, Any]] = []
    seen: dict[RouteKey, int] = {}
    try:
        with _open_text(Path(path)) as handle:
            reader = csv.DictReader(handle)
            if tuple(c.strip() for c in reader.fieldnames or ()) != ROUTE_COLUMNS:
                raise DataImportError(f"{path}:1: header must be {','.join(ROUTE_COLUMNS)}")
            for raw in reader:
                try:
                    row = _route_row(raw, regions)
                except ValueError as exc:
                    raise DataImportError(f"{path}:{reader.line_num}: {exc}") from exc
                key: RouteKey = (row["mcc"], row["mnc"], row["area"], row["cell"])
                if key in seen:
                    raise DataImportError(
                        f"{path}:{reader.line_num}: same cell as line {seen[key]}"
                    )
                seen[key] = reader.line_num
                rows.append(row)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataImportError(f"{path}: {exc}") from exc
    try:
        with engine.begin() as conn:
            conn.execute(delete(CellRouteRecord))
            if rows:
                conn.execute(insert(CellRouteRecord), rows)
    except SQLAlchemyError as exc:
        raise DataImportError(f"{path}: {exc}") from exc
    return ImportReport(str(path), len(rows), 0, ())
