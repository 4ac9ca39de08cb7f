"""Where cells are: the cell database (OpenCelliD rows) and the operator's cell routes.

Both are SQLAlchemy tables on the shared Base; resolution reaches them through the two
small protocols below, which the in-memory classes also satisfy for tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import BigInteger, Engine, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from telephony.db import Base
from telephony.location.cell import CellId

# (mcc, mnc, area, cell); a cell of None in a route covers the whole area.
RouteKey = tuple[int, int, int, int | None]


@dataclass(frozen=True, slots=True)
class CellPosition:
    """A cell's estimated position; range_m is OpenCelliD's coverage estimate (0: unknown)."""

    radio: str
    mcc: int
    mnc: int
    area: int
    cell: int
    lat: float
    lon: float
    range_m: int
    samples: int


class CellDatabase(Protocol):
    def position(self, cell: CellId) -> CellPosition | None: ...


class RouteTable(Protocol):
    def regency_for(self, cell: CellId) -> str | None: ...


class CellRecord(Base):
    """One row of an OpenCelliD export, all countries kept."""

    __tablename__ = "location_cells"
    __table_args__ = (Index("ix_location_cells_key", "mcc", "mnc", "area", "cell"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    radio: Mapped[str] = mapped_column(String(8))
    mcc: Mapped[int]
    mnc: Mapped[int]
    area: Mapped[int] = mapped_column(BigInteger)
    cell: Mapped[int] = mapped_column(BigInteger)
    unit: Mapped[int | None]
    lon: Mapped[float]
    lat: Mapped[float]
    range_m: Mapped[int]
    samples: Mapped[int]
    changeable: Mapped[bool]
    created: Mapped[int] = mapped_column(BigInteger)
    updated: Mapped[int] = mapped_column(BigInteger)
    average_signal: Mapped[int | None]


class CellRouteRecord(Base):
    """The operator's word on which regency a cell (or a whole LAC/TAC) belongs to."""

    __tablename__ = "location_cell_routes"
    __table_args__ = (Index("ix_location_cell_routes_key", "mcc", "mnc", "area", "cell"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mcc: Mapped[int]
    mnc: Mapped[int]
    area: Mapped[int] = mapped_column(BigInteger)
    cell: Mapped[int | None] = mapped_column(BigInteger)
    regency_code: Mapped[str] = mapped_column(String(5))


def _numbers(cell: CellId) -> tuple[int, int] | None:
    if not (cell.mcc.isdigit() and cell.mnc.isdigit()):
        return None
    return int(cell.mcc), int(cell.mnc)


class SqlCellDatabase:
    """Cell positions from the location_cells table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def position(self, cell: CellId) -> CellPosition | None:
        numbers = _numbers(cell)
        if numbers is None:
            return None
        query = (
            select(
                CellRecord.radio, CellRecord.mcc, CellRecord.mnc, CellRecord.area,
                CellRecord.cell, CellRecord.lat, CellRecord.lon, CellRecord.range_m,
                CellRecord.samples,
            )
            .where(
                CellRecord.mcc == numbers[0],
                CellRecord.mnc == numbers[1],
                CellRecord.area == cell.area,
                CellRecord.cell == cell.cell,
                CellRecord.radio == cell.radio,
            )
            .order_by(CellRecord.samples.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return CellPosition(*row) if row is not None else None


class SqlRouteTable:
    """Cell-to-regency routes from the location_cell_routes table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def regency_for(self, cell: CellId) -> str | None:
        numbers = _numbers(cell)
        if numbers is None:
            return None
        query = select(CellRouteRecord.regency_code, CellRouteRecord.cell).where(
            CellRouteRecord.mcc == numbers[0],
            CellRouteRecord.mnc == numbers[1],
            CellRouteRecord.area == cell.area,
            (CellRouteRecord.cell == cell.cell) | CellRouteRecord.cell.is_(None),
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        # A route for the exact cell beats one for its whole area.
        exact = [code for code, routed_cell in rows if routed_cell is not None]
        ranked = exact or [code for code, _ in rows]
        return ranked[0] if ranked else None


class MemoryCellDatabase:
    """Cell positions held in a dict; for tests and small deployments."""

    def __init__(self, cells: Iterable[CellPosition]) -> None:
        self._cells = {(c.radio, c.mcc, c.mnc, c.area, c.cell): c for c in cells}

    def position(self, cell: CellId) -> CellPosition | None:
        numbers = _numbers(cell)
        if numbers is None:
            return None
        return self._cells.get((cell.radio, *numbers, cell.area, cell.cell))


class MemoryRouteTable:
    """Cell routes held in a dict keyed by (mcc, mnc, area, cell or None)."""

    def __init__(self, routes: Mapping[RouteKey, str]) -> None:
        self._routes = dict(routes)

    def regency_for(self, cell: CellId) -> str | None:
        numbers = _numbers(cell)
        if numbers is None:
            return None
        return self._routes.get((*numbers, cell.area, cell.cell)) or self._routes.get(
            (*numbers, cell.area, None)
        )
