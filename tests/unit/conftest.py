"""Fixtures of the unit tests: an audit store on SQLite, and on PostgreSQL when configured.

A module that needs another kind of store defines its own `engine`, which wins over this one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from telephony.db import make_engine
from telephony.migrations import upgrade

PG_ENV = "TELEPHONY_TEST_POSTGRES_URL"


def postgres_engine() -> Iterator[Engine]:
    """A fresh schema per test; FAIL, not skip, when the URL is set but the server is down."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set")
    admin = make_engine(url)
    schema = f"audit_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable: {exc}")
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres() -> Iterator[Engine]:
    """An empty PostgreSQL schema of the test's own (skipped when none is configured)."""
    yield from postgres_engine()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated audit store: SQLite, and PostgreSQL (a schema of its own) when configured."""
    if request.param == "sqlite":
        sqlite = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
        upgrade(sqlite)
        yield sqlite
        sqlite.dispose()
    else:
        for pg in postgres_engine():
            upgrade(pg)
            yield pg
