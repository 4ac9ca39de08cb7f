from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from telephony.ami.frames import Frame
from telephony.audit.chain import (
    GENESIS_HASH,
    ChainRow,
    Problem,
    check,
    link_hash,
    parse_checkpoint,
    sign_checkpoint,
)
from telephony.audit.checkpoints import CheckpointLog
from telephony.audit.events import record_from_frame
from telephony.audit.models import AppendOnlyViolation, AuditEvent, Call, CallLeg
from telephony.audit.projection import LegRole, Outcome
from telephony.audit.store import ProjectionCache, write_batch
from telephony.audit.verify import verify
from telephony.migrations import upgrade

KEY = b"checkpoint-key-for-tests"
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def frames(count: int) -> list[Frame]:
    return [
        Frame(
            [
                ("Event", "Newstate"),
                ("Uniqueid", f"17.{i % 3}"),
                ("Linkedid", "17.0"),
                ("N", str(i)),
            ],
            received_ns=1_740_816_000_000_000_000 + i * 1000,
        )
        for i in range(count)
    ]


def fill(engine: Engine, count: int, checkpoint_path: Path, every: int = 4) -> None:
    """Write ``count`` events and a checkpoint after every ``every`` of them."""
    log = CheckpointLog(checkpoint_path, KEY)
    cache = ProjectionCache(100)
    items = [(record_from_frame(f), f) for f in frames(count)]
    for start in range(0, count, every):
        with Session(engine) as session, session.begin():
            result = write_batch(session, items[start : start + every], cache)
        cache.update(result.views)
        log.append(result.tail.seq, result.tail.hash, T0)


Statement = str | tuple[str, dict[str, object]]


def raw(engine: Engine, *statements: Statement) -> None:
    """Tamper the way an intruder would: triggers off, plain SQL."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
        for statement in statements:
            sql, params = (statement, {}) if isinstance(statement, str) else statement
            connection.execute(text(sql), params)


def test_verify_passes_on_untouched_chain(engine: Engine, tmp_path: Path) -> None:
    fill(engine, 10, tmp_path / "cp.jsonl")
    report = verify(engine, tmp_path / "cp.jsonl", KEY)
    assert report.ok, report
    assert (report.events_checked, report.checkpoints_checked) == (10, 3)


TAMPERS: dict[str, tuple[list[str], Problem, int]] = {
    "edit": (["UPDATE audit_events SET payload = '{}' WHERE seq = 5"], Problem.EDITED, 5),
    "delete": (["DELETE FROM audit_events WHERE seq = 6"], Problem.DELETED, 6),
    "swap": (
        [
            "UPDATE audit_events SET seq = -1 WHERE seq = 3",
            "UPDATE audit_events SET seq = 3 WHERE seq = 4",
            "UPDATE audit_events SET seq = 4 WHERE seq = -1",
        ],
        Problem.REORDERED,
        3,
    ),
    "truncate": (["DELETE FROM audit_events WHERE seq > 7"], Problem.TRUNCATED, 8),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_verify_names_first_bad_seq(engine: Engine, tmp_path: Path, tamper: str) -> None:
    statements, problem, seq = TAMPERS[tamper]
    fill(engine, 10, tmp_path / "cp.jsonl")
    raw(engine, *statements)
    report = verify(engine, tmp_path / "cp.jsonl", KEY)
    assert not report.ok
    assert (report.problem, report.first_bad_seq) == (problem, seq), report.detail


def test_rehashed_rewrite_is_caught_by_checkpoint(engine: Engine, tmp_path: Path) -> None:
    fill(engine, 8, tmp_path / "cp.jsonl")
    table = AuditEvent.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.seq)).mappings().all()
    statements: list[Statement] = []
    prev = GENESIS_HASH
    for row in rows:
        payload = '{"forged":true}' if row["seq"] == 2 else row["payload"]
        fields = {k: row[k] for k in ("seq", "time", "linkedid", "uniqueid", "type", "source")}
        new = link_hash(payload=payload, prev_hash=prev, event_key=row["event_key"], **fields)
        sql = "UPDATE audit_events SET payload = :p, prev_hash = :prev, hash = :h WHERE seq = :s"
        statements.append((sql, {"p": payload, "prev": prev, "h": new, "s": row["seq"]}))
        prev = new
    raw(engine, *statements)
    report = verify(engine, tmp_path / "cp.jsonl", KEY)
    assert (report.problem, report.first_bad_seq) == (Problem.REWRITTEN, 4)


def test_forged_checkpoint_is_reported(engine: Engine, tmp_path: Path) -> None:
    fill(engine, 4, tmp_path / "cp.jsonl")
    forged = sign_checkpoint(9, "f" * 64, T0, b"not-the-key")
    with (tmp_path / "cp.jsonl").open("a") as handle:
        handle.write(forged.to_line() + "\n")
    report = verify(engine, tmp_path / "cp.jsonl", KEY)
    assert (report.problem, report.first_bad_seq) == (Problem.BAD_CHECKPOINT, 9)


def test_orm_refuses_update_and_delete(engine: Engine, tmp_path: Path) -> None:
    fill(engine, 2, tmp_path / "cp.jsonl")
    with Session(engine) as session:
        event = session.get(AuditEvent, 1)
        assert event is not None
        event.payload = "{}"
        with pytest.raises(AppendOnlyViolation):
            session.flush()
        session.rollback()
        session.delete(session.get(AuditEvent, 2))
        with pytest.raises(AppendOnlyViolation):
            session.flush()
        session.rollback()
        with pytest.raises(AppendOnlyViolation):
            session.execute(update(AuditEvent).values(payload="{}"))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET payload = '{}' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
    ],
)
def test_database_trigger_refuses_raw_sql(engine: Engine, tmp_path: Path, statement: str) -> None:
    fill(engine, 2, tmp_path / "cp.jsonl")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    assert verify(engine, tmp_path / "cp.jsonl", KEY).ok


@pytest.mark.postgres
def test_postgres_trigger_refuses_truncate(postgres: Engine) -> None:
    upgrade(postgres)
    with pytest.raises(DBAPIError, match="append-only"), postgres.begin() as connection:
        connection.execute(text("TRUNCATE audit_events"))


def test_projection_round_trips_through_the_database(engine: Engine) -> None:
    linkedid = "1740816000.10"
    operator = "1740816000.11"
    base = {"Uniqueid": linkedid, "Linkedid": linkedid}
    dest = {"DestUniqueid": operator, "DestChannel": "PJSIP/op-0000000b", "DestLinkedid": linkedid}
    script = [
        {"Event": "Newchannel", "Channel": "PJSIP/in-0000000a", "CallerIDNum": "+628123", **base},
        {"Event": "UserEvent", "UserEvent": "IVRLocation", "Lat": "-6.2", "Lon": "106.8", **base},
        {"Event": "QueueCallerJoin", "Queue": "jakarta", **base},
        {"Event": "QueueCallerLeave", "Queue": "jakarta", **base},
        {"Event": "QueueCallerJoin", "Queue": "overflow", **base},
        {"Event": "AgentConnect", "MemberName": "op", **base, **dest},
        {"Event": "Hangup", "Cause": "16", **base},
    ]
    for i, fields in enumerate(script):
        frame = Frame.of(fields, received_ns=1_740_816_000_000_000_000 + i * 1_000_000_000)
        # A fresh cache per event forces every projection to be reloaded from the database.
        with Session(engine) as session, session.begin():
            write_batch(session, [(record_from_frame(frame), frame)], ProjectionCache(10))
    with Session(engine) as session:
        call = session.get(Call, linkedid)
        assert call is not None
        assert call.outcome is Outcome.OVERFLOWED_THEN_ANSWERED and call.answer_seconds == 5.0
        assert call.arrived_at == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
        assert (call.location_lat, call.caller, call.queue) == (-6.2, "+628123", "overflow")
        leg = session.get(CallLeg, operator)
        assert leg is not None and leg.role is LegRole.OPERATOR


def chain_rows(count: int) -> list[ChainRow]:
    rows: list[ChainRow] = []
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        fields = {
            "seq": seq,
            "time": T0,
            "linkedid": "1.1",
            "uniqueid": "1.1",
            "type": "Newstate",
            "payload": f'{{"n":{seq}}}',
            "source": "ami",
            "event_key": f"k{seq}",
            "prev_hash": prev,
        }
        prev = link_hash(**fields)  # type: ignore[arg-type]
        rows.append(ChainRow(**fields, hash=prev))  # type: ignore[arg-type]
    return rows


def test_pure_check_empty_and_clean() -> None:
    assert check([], [], KEY).ok
    rows = chain_rows(5)
    checkpoints = [sign_checkpoint(r.seq, r.hash, T0, KEY) for r in rows[1::2]]
    report = check(rows, checkpoints, KEY)
    assert report.ok and report.checkpoints_checked == 2


def test_checkpoint_line_round_trip_and_garbage() -> None:
    checkpoint = sign_checkpoint(3, "a" * 64, T0, KEY)
    assert parse_checkpoint(checkpoint.to_line()) == checkpoint
    for bad in ["", "{", '{"seq": 1}', '{"seq":"x","hash":"h","time":"t","mac":"m"}']:
        with pytest.raises(ValueError):
            parse_checkpoint(bad)


def test_hash_depends_on_every_field() -> None:
    base = chain_rows(1)[0]
    variants: list[Callable[[ChainRow], ChainRow]] = [
        lambda r: ChainRow(**{**r.__dict__, "seq": 2}),
        lambda r: ChainRow(**{**r.__dict__, "time": T0.replace(microsecond=1)}),
        lambda r: ChainRow(**{**r.__dict__, "source": "cel-backfill"}),
        lambda r: ChainRow(**{**r.__dict__, "prev_hash": "1" * 64}),
    ]
    for variant in variants:
        changed = variant(base)
        fields = {k: v for k, v in changed.__dict__.items() if k != "hash"}
        assert link_hash(**fields) != base.hash
