"""Alembic environment: runs on the connection handed over by :func:`telephony.migrations.upgrade`,
or on ``sqlalchemy.url`` when alembic's own CLI is used with a config naming one."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

# Each store registers its tables on Base.metadata when imported.
import telephony.audit.models
import telephony.callbacks.items
import telephony.location.store
import telephony.messages.models
import telephony.operators.presence  # noqa: F401
from telephony.db import Base, make_engine


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")

handed_over = context.config.attributes.get("connection")
if handed_over is not None:
    _run(handed_over)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url or call telephony.migrations.upgrade()")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()
