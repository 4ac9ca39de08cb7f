from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from telephony.ami.frames import Frame
from telephony.audit.events import record_from_frame
from telephony.audit.models import Call
from telephony.audit.projection import Outcome
from telephony.audit.report import list_calls, show_call, stats, summarize
from telephony.audit.store import ProjectionCache, write_batch
from telephony.db import make_engine
from telephony.migrations import upgrade
from telephony.percentile import nearest_rank as percentile

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    upgrade(db)
    yield db
    db.dispose()


def add_call(
    session: Session,
    n: int,
    regency: str | None,
    outcome: Outcome | None,
    seconds: float | None = None,
    *,
    callback: bool = False,
) -> None:
    arrived = T0 + timedelta(minutes=n)
    session.add(
        Call(
            linkedid=f"1740816000.{n}",
            arrived_at=arrived,
            regency_code=regency,
            outcome=outcome,
            answer_seconds=seconds,
            answered_at=arrived + timedelta(seconds=seconds) if seconds is not None else None,
            phase="ended" if outcome else "queued",
            is_callback=callback,
        )
    )


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as db:
        for n, seconds in enumerate([4, 8, 12, 14, 16, 30]):
            add_call(db, n, "3171", Outcome.ANSWERED, seconds)
        add_call(db, 6, "3171", Outcome.ABANDONED_IN_QUEUE)
        add_call(db, 7, "3171", Outcome.OVERFLOWED_THEN_ANSWERED, 19)
        add_call(db, 8, "3201", Outcome.FAILED)
        add_call(db, 9, None, Outcome.ANSWERED, 5)
        add_call(db, 10, "3201", Outcome.ANSWERED, 3, callback=True)
        add_call(db, 11, "3201", None)
        db.commit()
        yield db


def test_stats_per_regency(session: Session) -> None:
    report = stats(session)
    jakarta, bogor, unknown = report.regencies
    assert (jakarta.regency_code, bogor.regency_code, unknown.regency_code) == (
        "3171",
        "3201",
        None,
    )
    assert (jakarta.offered, jakarta.answered, jakarta.abandoned, jakarta.failed) == (8, 7, 1, 0)
    assert (jakarta.answer_p50_s, jakarta.answer_p90_s, jakarta.answer_p95_s) == (14, 30, 30)
    assert jakarta.within_s == {10.0: 2 / 8, 15.0: 4 / 8, 20.0: 6 / 8}
    assert not jakarta.meets_nena
    assert (bogor.offered, bogor.failed, bogor.answer_p50_s) == (1, 1, None)
    assert unknown.meets_nena and unknown.within_s[10.0] == 1.0
    assert report.total.offered == 10 and report.total.answered == 8


def test_stats_window(session: Session) -> None:
    report = stats(session, since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))
    assert report.total.offered == 2 and report.total.answer_p50_s == 12


def test_list_calls_filters_newest_first(session: Session) -> None:
    calls = list_calls(session, regency_code="3171", limit=3)
    assert [c.linkedid for c in calls] == ["1740816000.7", "1740816000.6", "1740816000.5"]
    failed = list_calls(session, outcome=Outcome.FAILED)
    assert [c.linkedid for c in failed] == ["1740816000.8"]


def test_show_call_with_legs_and_events(engine: Engine) -> None:
    linkedid = "1740816000.50"
    base = {"Uniqueid": linkedid, "Linkedid": linkedid}
    frames = [
        Frame.of({"Event": "Newchannel", "Channel": "PJSIP/in-0000000a", **base}, received_ns=1),
        Frame.of({"Event": "Hangup", "Cause": "16", **base}, received_ns=2),
    ]
    with Session(engine) as db, db.begin():
        write_batch(db, [(record_from_frame(f), f) for f in frames], ProjectionCache(1))
    with Session(engine) as db:
        detail = show_call(db, linkedid)
        assert detail is not None
        assert detail.call.outcome is Outcome.ABANDONED_IN_IVR
        assert [leg.uniqueid for leg in detail.legs] == [linkedid]
        assert [e.type for e in detail.events] == ["Newchannel", "Hangup"]
        assert detail.events[1].payload["Cause"] == "16"
        assert show_call(db, "nope") is None


def test_summarize_and_percentile_edges() -> None:
    empty = summarize("3171", [])
    assert empty.offered == 0 and not empty.meets_nena and empty.answer_p95_s is None
    assert percentile([1.0], 0.95) == 1.0
    assert percentile([float(s) for s in range(1, 101)], 0.9) == 90.0
    good = summarize("3171", [(Outcome.ANSWERED, 5.0)] * 19 + [(Outcome.ABANDONED_IN_IVR, None)])
    assert good.within_s[15.0] == 0.95 and good.meets_nena
