"""PostgreSQL's bulk path: rows into a table with COPY instead of INSERT.

COPY streams the rows in one command, with none of the per-row statement work; it runs in
the caller's transaction, so it commits (durably) or rolls back with the rest of a batch.
Only for psycopg 3 (``cursor.copy``); every other driver takes SQLAlchemy's INSERT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table


def copy_rows(dbapi_connection: Any, table: Table, rows: Sequence[dict[str, object]]) -> None:
    """COPY ``rows`` (dicts keyed by column name, all with the same keys) into ``table``."""
    names = list(rows[0])
    columns = ", ".join(f'"{name}"' for name in names)
    statement = f'COPY "{table.name}" ({columns}) FROM STDIN'
    with dbapi_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[name] for name in names])
