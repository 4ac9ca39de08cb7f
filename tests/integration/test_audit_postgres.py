"""PostgreSQL stopped for 20 s under calls: calls go on, events spool, nothing is lost.

Needs TELEPHONY_TEST_POSTGRES_URL (scripts/test sets it, and in CI PostgreSQL must answer)
and the right to stop and start the local cluster (root, as in CI).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from telephony.audit import CallLeg, verify
from telephony.audit.checkpoints import checkpoint_key
from telephony.audit.reconcile import read_cel
from telephony.config import resolve_path
from telephony.pbx.provision import AsteriskInstall
from telephony.store import open_database
from tests.harness.sandbox import Sandbox, start_sandbox
from tests.harness.service import ServeProcess
from tests.harness.sipp import run_scenario

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres]

OUTAGE_S = 20.0
PG_URL = os.environ.get("TELEPHONY_TEST_POSTGRES_URL", "")


def cluster() -> list[str]:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def postgres(action: str) -> None:
    subprocess.run([*cluster(), action], check=True, capture_output=True, timeout=60)


def wait_postgres(url: str, timeout: float = 30.0) -> None:
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return
            except OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # a starting PostgreSQL signals nothing: try to connect
    finally:
        engine.dispose()


@pytest.fixture
def database() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("TELEPHONY_TEST_POSTGRES_URL is not set")
    name = f"telephony_outage_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name, query={"connect_timeout": "2"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        wait_postgres(PG_URL)
        admin.dispose()  # its pooled connection died with the restart
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def box(
    asterisk_install: AsteriskInstall, database: str, tmp_path: Path
) -> Iterator[Sandbox]:
    sandbox = start_sandbox(asterisk_install, tmp_path, f"audit.database_url={database}")
    try:
        yield sandbox
    finally:
        sandbox.stop()


def test_postgres_outage_spools_and_loses_nothing(box: Sandbox, tmp_path: Path) -> None:
    def call() -> bool:
        return run_scenario("uac_112.xml", box.sip_target, workdir=box.workdir,
                            extra=("-d", "2000")).ok

    service = ServeProcess(box.config, tmp_path / "serve.log")
    spool = resolve_path(box.config.audit.spool_path)
    try:
        service.wait_ready()
        assert call()
        postgres("stop")
        stopped = time.monotonic()
        try:
            with ThreadPoolExecutor(3) as pool:
                results = list(pool.map(lambda _n: call(), range(3)))
            assert all(results), "a call failed while the database was down"
            assert box.wait_no_channels() == 0
            assert spool.exists() and spool.stat().st_size > 0, "nothing was spooled"
            # The outage lasts OUTAGE_S whatever the calls took: a duration, not a wait.
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        finally:
            postgres("start")
        wait_postgres(box.config.audit.database_url)
        in_cel = {r.uniqueid for r in read_cel(box.layout.cel_csv).records}
        engine = open_database(box.config)
        deadline = time.monotonic() + 30
        try:
            while True:
                with Session(engine) as session:
                    in_audit = set(session.scalars(select(CallLeg.uniqueid)))
                if in_audit >= in_cel or time.monotonic() > deadline:
                    break
                time.sleep(0.2)  # the store announces no commit to a reader: poll it
        finally:
            engine.dispose()
        assert in_audit == in_cel, f"missing after replay: {sorted(in_cel - in_audit)}"
    finally:
        assert service.stop() == 0
    engine = open_database(box.config)
    try:
        report = verify(engine, resolve_path(box.config.audit.checkpoint_path),
                        checkpoint_key(box.config))
    finally:
        engine.dispose()
    assert report.ok, report
    assert len(in_cel) == 4
