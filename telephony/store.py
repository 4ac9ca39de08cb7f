"""Open the service's database (audit trail and location tables), migrated to the latest schema."""

from __future__ import annotations

from sqlalchemy import Engine

from telephony.config import Config, resolve_path
from telephony.db import make_engine
from telephony.migrations import upgrade


def database_url(config: Config) -> str:
    url = config.audit.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        # A relative SQLite path needs its directory, like every other path under var/.
        resolve_path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return url


def open_database(config: Config) -> Engine:
    engine = make_engine(database_url(config))
    upgrade(engine)
    return engine
