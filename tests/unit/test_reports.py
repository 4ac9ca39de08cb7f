"""Reports from a SQLite audit store: sections, bucket edges, nuisance shares, CSV and HTML."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from telephony.audit.models import AuditEvent, Call
from telephony.audit.projection import Outcome
from telephony.config import Config, load
from telephony.incidents.models import Handoff, Incident, IncidentShare
from telephony.reports import figures
from telephony.reports.formats import CSV_COLUMNS, as_csv, as_html
from telephony.store import open_database

DAY = date(2026, 12, 1)
# 10:00 WIB on DAY.
MORNING = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def _config(tmp_path: Path) -> Config:
    return load(None, env={}, overrides=[f"audit.database_url=sqlite:///{tmp_path / 't.db'}"])


def _call(n: int, outcome: Outcome, seconds: float | None, etype: str = "medical",
          regency: str = "35.78", at: datetime = MORNING) -> Call:
    return Call(linkedid=f"17000000{n:02d}.1", regency_code=regency, emergency_type=etype,
                arrived_at=at + timedelta(minutes=n), phase="ended", outcome=outcome,
                answer_seconds=seconds, is_callback=False)


def _classified(seq: int, linkedid: str, category: str) -> AuditEvent:
    payload = {"Event": "UserEvent", "UserEvent": "ConsoleAction", "Operation": "classify",
               "Category": category, "Linkedid": linkedid, "Uniqueid": linkedid}
    return AuditEvent(seq=seq, time=MORNING + timedelta(hours=1), linkedid=linkedid,
                      uniqueid=linkedid, type="UserEvent", payload=json.dumps(payload),
                      source="ami", event_key=f"k{seq}", prev_hash="0" * 64, hash=f"{seq:064d}")


def test_a_report_counts_types_buckets_and_nuisance(tmp_path: Path) -> None:
    config = _config(tmp_path)
    engine = open_database(config)
    with Session(engine) as session:
        session.add_all([
            _call(1, Outcome.ANSWERED, 5.0), _call(2, Outcome.ANSWERED, 5.1),
            _call(3, Outcome.ANSWERED, 61.0, "fire"), _call(4, Outcome.ABANDONED_IN_QUEUE, None),
            _call(5, Outcome.ANSWERED, 3.0, regency="35.07"),
            _call(6, Outcome.ANSWERED, 3.0, at=MORNING - timedelta(days=1)),
        ])
        session.add_all([_classified(1, "1700000004.1", "ghost"),
                         _classified(2, "1700000004.1", "prank"),
                         _classified(3, "1700000001.1", "emergency")])
        session.commit()
    report = figures.build(engine, config, "35.78", DAY, DAY)
    engine.dispose()
    assert report["offered"] == 4
    sections = report["sections"]
    assert isinstance(sections, dict)
    calls = {(r["emergency_type"], r["outcome"]): r["calls"] for r in sections["calls"]["rows"]}
    assert calls == {("medical", "answered"): 2, ("fire", "answered"): 1,
                     ("medical", "abandoned-in-queue"): 1}
    buckets = {r["bucket"]: r["calls"] for r in sections["answer_times"]["rows"]}
    assert buckets["0-5 s"] == 1 and buckets["5-10 s"] == 1 and buckets["over 60 s"] == 1
    levels = {lv["within_s"]: lv["share"] for lv in sections["answer_times"]["service_levels"]}
    assert levels == {15.0: 0.5, 20.0: 0.5}
    nuisance = sections["nuisance"]
    # The latest classification counts: the abandoned call is a prank, not a ghost.
    assert {r["category"]: r["calls"] for r in nuisance["rows"]} == {"prank": 1, "emergency": 1}
    assert nuisance["nuisance_share"] == 0.25

    table = list(csv.DictReader(io.StringIO(as_csv(report))))
    assert tuple(table[0]) == CSV_COLUMNS
    assert {row["section"] for row in table} == {"offered", "calls", "answer_times", "nuisance"}
    assert all(row["regency_code"] == "35.78" and row["from"] == "2026-12-01" for row in table)
    html = as_html(report, "Kota <Surabaya>")
    assert "Kota &lt;Surabaya&gt;" in html and html.count("<svg") == 4


def test_days_are_local_days(tmp_path: Path) -> None:
    since, until = figures.bounds(DAY, DAY, "Asia/Jakarta")
    assert since == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    assert until - since == timedelta(days=1)


def _incident(n: int, regency: str, created: datetime) -> Incident:
    return Incident(id=n, uuid=f"00000000-0000-0000-0000-{n:012d}", regency_code=regency,
                    type="fire", status="dispatched", created_at=created, created_by="op",
                    updated_at=created)


def _handoff(n: int, incident: int, agency: str, dispatched: datetime,
             acked_after_s: float | None, escalated: bool = False) -> Handoff:
    return Handoff(id=n, incident_id=incident, agency_id=agency, status="dispatched",
                   dispatched_at=dispatched, dispatched_by="op",
                   acknowledged_at=None if acked_after_s is None
                   else dispatched + timedelta(seconds=acked_after_s),
                   escalated_at=dispatched + timedelta(seconds=300) if escalated else None)


def test_incidents_by_agency_give_hand_off_and_acknowledgement_times(tmp_path: Path) -> None:
    config = _config(tmp_path)
    engine = open_database(config)
    with Session(engine) as session:
        session.add_all([_incident(1, "35.78", MORNING), _incident(2, "35.13", MORNING),
                         _incident(3, "35.07", MORNING),
                         _incident(4, "35.78", MORNING - timedelta(days=1))])
        session.flush()
        session.add(IncidentShare(incident_id=2, regency_code="35.78", shared_at=MORNING,
                                  shared_by="op"))
        at = MORNING + timedelta(seconds=60)
        session.add_all([
            _handoff(1, 1, "psc119-sby", at, 30.0), _handoff(2, 1, "damkar-sby", at, None, True),
            # Shared with 35.78 (Bromo): counted; 35.07's own and yesterday's are not.
            _handoff(3, 2, "psc119-sby", MORNING + timedelta(seconds=120), 90.0),
            _handoff(4, 3, "damkar-mlg", at, 10.0),
            _handoff(5, 4, "psc119-sby", MORNING - timedelta(days=1), 5.0)])
        session.commit()
    report = figures.build(engine, config, "35.78", DAY, DAY)
    engine.dispose()
    sections = report["sections"]
    assert isinstance(sections, dict)
    rows = {r["agency_id"]: r for r in sections["incidents"]["rows"]}
    assert set(rows) == {"psc119-sby", "damkar-sby"}
    psc, damkar = rows["psc119-sby"], rows["damkar-sby"]
    assert (psc["handoffs"], psc["incidents"], psc["unacknowledged"]) == (2, 2, 0)
    assert psc["handoff"] == {"count": 2, "median_s": 60.0, "p90_s": 120.0}
    assert psc["acknowledgement"] == {"count": 2, "median_s": 30.0, "p90_s": 90.0}
    assert (damkar["unacknowledged"], damkar["escalated"]) == (1, 1)
    assert damkar["acknowledgement"] == {"count": 0, "median_s": None, "p90_s": None}

    table = [r for r in csv.DictReader(io.StringIO(as_csv(report)))
             if r["section"] == "incidents"]
    acks = {r["agency"]: (r["handoffs"], r["median_s"], r["p90_s"]) for r in table
            if r["outcome"] == "acknowledged"}
    assert acks == {"psc119-sby": ("2", "30.0", "90.0"), "damkar-sby": ("0", "", "")}
    assert {(r["agency"], r["handoffs"]) for r in table if r["outcome"] == "escalated"} == {
        ("psc119-sby", "0"), ("damkar-sby", "1")}
    html = as_html(report, "Kota Surabaya")
    assert "Incidents by agency" in html and "<td>damkar-sby</td>" in html
