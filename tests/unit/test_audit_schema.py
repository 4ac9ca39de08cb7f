"""The calls schema is written three times: the ORM models (audit/models.py), the projection
the writer computes (audit/projection.py) and migration 0001, which creates the tables in
every store. They must agree, column for column."""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing

import pytest
from sqlalchemy import Engine, Table, inspect

from telephony.audit.models import AuditEvent, Call, CallLeg
from telephony.audit.projection import CallState, LegRole, LegState, Outcome
from telephony.db import Base

MIGRATION = importlib.import_module("telephony.migrations.versions.0001_audit")


def _nullable(kind: object) -> bool:
    return isinstance(kind, types.UnionType) and type(None) in typing.get_args(kind)


@pytest.mark.parametrize(
    ("model", "state"), [(Call, CallState), (CallLeg, LegState), (AuditEvent, None)]
)
def test_models_projection_and_migration_define_the_same_columns(
    engine: Engine, model: type[Base], state: type | None
) -> None:
    table = typing.cast(Table, model.__table__)
    migrated = {c["name"]: c for c in inspect(engine).get_columns(table.name)}
    assert set(migrated) == set(table.columns.keys()), table.name
    for column in table.columns:
        assert migrated[column.name]["nullable"] == column.nullable, (table.name, column.name)
    primary = inspect(engine).get_pk_constraint(table.name)["constrained_columns"]
    assert primary == [c.name for c in table.primary_key.columns], table.name
    if state is None:
        return
    hints = typing.get_type_hints(state)
    fields = {f.name for f in dataclasses.fields(state)}
    assert fields == set(table.columns.keys()), table.name
    for name in fields:
        # A projection field that may be None is exactly a nullable column.
        assert _nullable(hints[name]) == table.columns[name].nullable, (table.name, name)


def test_the_migration_allows_exactly_the_outcomes_and_roles_the_projection_knows() -> None:
    assert set(MIGRATION.OUTCOMES) == {o.value for o in Outcome}
    assert set(MIGRATION.ROLES) == {r.value for r in LegRole}
