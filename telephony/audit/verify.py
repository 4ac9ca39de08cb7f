"""``verify``: check the stored chain against the signed checkpoint file."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, select

from telephony.audit.chain import ChainRow, Problem, VerifyReport, check
from telephony.audit.checkpoints import read_checkpoints
from telephony.audit.models import AuditEvent

_CHUNK = 1000


def verify(engine: Engine, checkpoint_path: Path, key: bytes) -> VerifyReport:
    """Walk every event in seq order; the report names the first bad seq and what is wrong."""
    try:
        checkpoints = read_checkpoints(checkpoint_path)
    except ValueError as exc:
        return VerifyReport(False, 0, 0, None, Problem.BAD_CHECKPOINT, str(exc))
    with engine.connect() as connection:
        return check(_rows(connection.execution_options(yield_per=_CHUNK)), checkpoints, key)


def _rows(connection: Connection) -> Iterator[ChainRow]:
    table = AuditEvent.__table__
    columns = [table.c[field.name] for field in dataclasses.fields(ChainRow)]
    for row in connection.execute(select(*columns).order_by(table.c.seq)):
        yield ChainRow(**row._mapping)
