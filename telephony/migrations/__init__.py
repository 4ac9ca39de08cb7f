"""Alembic migrations for the telephony stores, shipped inside the package.

One linear history for every store on :class:`telephony.db.Base`; each revision creates only
the tables of its own feature, so features land independently. :func:`upgrade` runs them without
an alembic.ini.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from telephony.db import make_engine

SCRIPT_LOCATION = Path(__file__).resolve().parent


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Bring the database at ``engine_or_url`` to ``revision`` in one transaction."""
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()
