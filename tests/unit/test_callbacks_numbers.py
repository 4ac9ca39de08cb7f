"""Callback items hold only dialable numbers; one bad row never blocks the others (issue 12, 3).

On SQLite and PostgreSQL (which enforces the columns' lengths: on main a 33-digit caller made
every later sweep fail there).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from telephony.audit import Call, Outcome
from telephony.audit.limits import MARKER
from telephony.callbacks.items import CallbackAttempt, CallbackItem, dialable, sweep

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def abandoned(linkedid: str, caller: str | None, n: int, **fields: object) -> Call:
    arrived = START + timedelta(minutes=n)
    return Call(linkedid=linkedid, caller=caller, arrived_at=arrived, queued_at=arrived,
                ended_at=arrived + timedelta(seconds=40), phase="ended",
                outcome=Outcome.ABANDONED_IN_QUEUE, **fields)  # fmt: skip


def test_only_dialable_numbers_become_items_and_the_rest_are_no_number(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add_all([
            abandoned("c.1", "7" * 40, 1),  # longer than any number (Asterisk allows 79)
            abandoned("c.2", "0812\r\nEvent: UserEvent", 2),
            abandoned("c.3", "anonymous", 3),
            abandoned("c.4", "+6281234567890", 4, emergency_type="x" * 30,
                      cell_id="LTE:" + "9" * 56),
            abandoned("c.5", "081299990001", 5),
        ])  # fmt: skip
    report = sweep(engine, merge_window_s=600, min_ivr_s=3)
    assert (report.created, report.skipped_no_number) == (2, 3)
    with Session(engine) as session:
        items = {i.caller: i for i in session.scalars(select(CallbackItem))}
        outcomes = {a.linkedid: a.outcome for a in session.scalars(select(CallbackAttempt))}
    assert set(items) == {"+6281234567890", "081299990001"}
    assert outcomes == {"c.1": "no-number", "c.2": "no-number", "c.3": "no-number",
                        "c.4": "abandoned-in-queue", "c.5": "abandoned-in-queue"}  # fmt: skip
    genuine = items["+6281234567890"]
    assert genuine.emergency_type == "x" * 15 + MARKER
    assert genuine.cell_id == "LTE:" + "9" * 56
    # Nothing is swept twice, and a later genuine caller still gets an item.
    with Session(engine) as session, session.begin():
        session.add(abandoned("c.6", "081299990002", 6))
    assert sweep(engine, merge_window_s=600, min_ivr_s=3).created == 1


@pytest.mark.parametrize(
    ("number", "ok"),
    [("+6281234567890", True), ("112", True), ("0" * 16, False), ("", False), (None, False),
     ("0812 345", False), ("+62+81", False), ("\u0661\u0662\u0663", False)],
)  # fmt: skip
def test_dialable(number: str | None, ok: bool) -> None:
    assert dialable(number) is ok
