from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from telephony.db import Base, make_engine
from telephony.location.cell import CellId
from telephony.location.importer import DataImportError, import_cells, import_routes
from telephony.location.region import Regions, load_regions
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
CELLS = ROOT / "config" / "cells.example.csv"
ROUTES = ROOT / "config" / "routing.example.csv"
SURABAYA_CELL = CellId("LTE", "510", "10", 4660, 74565)
MALANG_CELL = CellId("LTE", "510", "10", 8705, 703710)


@pytest.fixture(scope="module")
def regions() -> Regions:
    return load_regions(ROOT / "config" / "regions.toml")


def location_engine(path: Path) -> Engine:
    """A SQLite store with the location tables (in production the migrations make them)."""
    engine = make_engine(f"sqlite:///{path}")
    tables = [Base.metadata.tables[t.__tablename__] for t in (CellRecord, CellRouteRecord)]
    Base.metadata.create_all(engine, tables=tables)
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return location_engine(tmp_path / "location.db")


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(CellRecord)).scalar_one())


def test_import_example_cells_and_look_them_up(engine: Engine) -> None:
    report = import_cells(engine, CELLS)
    assert (report.imported, report.skipped, report.problems) == (8, 0, ())
    cells = SqlCellDatabase(engine)
    position = cells.position(SURABAYA_CELL)
    assert position == CellPosition("LTE", 510, 10, 4660, 74565, -7.265, 112.74, 1000, 42)
    # The same numbers on another radio are another cell.
    assert cells.position(CellId("NR", "510", "10", 4660, 74565)) is None
    assert cells.position(CellId("GSM", "262", "01", 1000, 2000)) is not None


def test_bad_cell_rows_are_skipped_with_line_numbers(engine: Engine) -> None:
    report = import_cells(engine, DATA / "cells_with_bad_rows.csv")
    assert report.imported == 2
    assert report.skipped == 4
    assert [p.line for p in report.problems] == [3, 4, 5, 6]
    assert "unknown radio" in report.problems[1].reason
    assert "expected 14 fields" in report.problems[2].reason


def test_cells_import_replaces_and_reads_gzip_without_header(
    engine: Engine, tmp_path: Path
) -> None:
    import_cells(engine, CELLS)
    rows = CELLS.read_text().splitlines()[1:3]
    packed = tmp_path / "510.csv.gz"
    packed.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    report = import_cells(engine, packed)
    assert report.imported == 2
    assert _count(engine) == 2


def test_cells_with_a_foreign_header_are_refused(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    path.write_text("radio,mcc,mnc,lac,cid\nLTE,510,10,1,2\n")
    with pytest.raises(DataImportError, match=":1: not an OpenCelliD header"):
        import_cells(engine, path)


def test_missing_cell_file(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(DataImportError):
        import_cells(engine, tmp_path / "absent.csv")


def test_import_example_routes(engine: Engine, regions: Regions) -> None:
    report = import_routes(engine, ROUTES, regions=regions)
    assert report.imported == 6
    routes = SqlRouteTable(engine)
    assert routes.regency_for(SURABAYA_CELL) == "35.78"
    assert routes.regency_for(MALANG_CELL) == "35.07"
    # A whole-TAC route covers any cell in it.
    assert routes.regency_for(CellId("NR", "510", "10", 2561, 999)) == "35.73"
    assert routes.regency_for(CellId("LTE", "510", "10", 1, 1)) is None


def test_exact_cell_route_beats_area_route(engine: Engine, regions: Regions,
                                           tmp_path: Path) -> None:
    path = tmp_path / "routes.csv"
    path.write_text("mcc,mnc,area,cell,regency_code\n510,10,7,,35.07\n510,10,7,42,35.79\n")
    import_routes(engine, path, regions=regions)
    routes = SqlRouteTable(engine)
    assert routes.regency_for(CellId("LTE", "510", "10", 7, 42)) == "35.79"
    assert routes.regency_for(CellId("LTE", "510", "10", 7, 43)) == "35.07"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("mcc,mnc,area,cell,regency_code\n510,10,1,1,35.07\n510,10,1,2,35.99\n",
         r"routes.csv:3: unknown regency code '35.99'"),
        ("mcc,mnc,area,cell,regency_code\n510,10,1,1,35.07\n510,10,1,1,35.78\n",
         r"routes.csv:3: same cell as line 2"),
        ("mcc,mnc,area,cell,regency_code\n510,ten,1,1,35.07\n", r"routes.csv:2: "),
        ("mcc,mnc,lac,ci,regency\n510,10,1,1,35.07\n", r"routes.csv:1: header must be"),
    ],
)
def test_bad_routes_stop_the_import_and_keep_the_old_table(
    engine: Engine, regions: Regions, tmp_path: Path, content: str, message: str
) -> None:
    import_routes(engine, ROUTES, regions=regions)
    path = tmp_path / "routes.csv"
    path.write_text(content)
    with pytest.raises(DataImportError, match=message):
        import_routes(engine, path, regions=regions)
    assert SqlRouteTable(engine).regency_for(SURABAYA_CELL) == "35.78"


def test_memory_lookups() -> None:
    position = CellPosition("LTE", 510, 10, 4660, 74565, -7.265, 112.74, 1000, 42)
    cells = MemoryCellDatabase([position])
    assert cells.position(SURABAYA_CELL) == position
    assert cells.position(MALANG_CELL) is None
    routes = MemoryRouteTable({(510, 10, 4660, 74565): "35.78", (510, 10, 8705, None): "35.07"})
    assert routes.regency_for(SURABAYA_CELL) == "35.78"
    assert routes.regency_for(MALANG_CELL) == "35.07"
    assert routes.regency_for(CellId("LTE", "510", "11", 8705, 1)) is None


def test_import_without_tables_is_a_clear_error(tmp_path: Path, regions: Regions) -> None:
    bare = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    with pytest.raises(DataImportError, match=r"cells\.example\.csv: .*no such table"):
        import_cells(bare, CELLS)
    with pytest.raises(DataImportError, match=r"routing\.example\.csv: .*no such table"):
        import_routes(bare, ROUTES, regions=regions)
