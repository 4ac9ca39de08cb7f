"""Incidents on a real audit store (SQLite, and PostgreSQL when configured): many calls one
incident, proposals by distance and time, shares, hand-offs and their steps, escalation,
what is audited, the EIDO/PIDF-LO export, signatures and the agencies file."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from telephony.audit.events import canonical_json
from telephony.incidents import (
    AgencyError,
    CallFacts,
    IncidentError,
    Incidents,
    eido,
    load_agencies,
    webhook_body,
)
from telephony.incidents.models import IncidentEvent, Outbox
from telephony.incidents.service import now
from telephony.incidents.webhook import backoff_s, sign, verify
from telephony.location import load_regions
from telephony.location.pidf import PidfLocation, parse_pidf
from telephony.location.region import Regions

CONFIG = Path(__file__).resolve().parents[2] / "config"
CRATER = (-7.942, 112.953)


class Audit:
    """Collects what would go to the audit chain; ``down`` makes it refuse like AMI down."""

    def __init__(self) -> None:
        self.records: list[dict[str, str]] = []
        self.down = False

    def __call__(self, user: str, action: str, linkedid: str = "", **fields: str) -> None:
        if self.down:
            raise RuntimeError("AMI is not connected")
        self.records.append({"User": user, "Operation": action, "Linkedid": linkedid, **fields})


@pytest.fixture(scope="module")
def regions() -> Regions:
    return load_regions(CONFIG / "regions.toml")


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture
def desk(engine: Engine, regions: Regions, audit: Audit) -> Incidents:
    agencies = load_agencies(CONFIG / "agencies.toml", regions)
    return Incidents(engine, regions, agencies, audit, link_distance_m=3000, link_window_s=3600)


def facts(linkedid: str, lat: float = CRATER[0], lon: float = CRATER[1],
          regency: str = "35.13") -> CallFacts:
    return CallFacts(linkedid, "+6281234567890", regency, "fire", lat, lon, 1000.0, "cell")


def test_a_call_becomes_an_incident_prefilled_and_audited(desk: Incidents, audit: Audit) -> None:
    incident = desk.create("op1", facts("1700000000.1"), note="api di <b>lereng</b>")
    assert (incident.type, incident.number, incident.regency_code, incident.status) == (
        "fire", "+6281234567890", "35.13", "created")
    assert incident.calls == ("1700000000.1",)
    assert incident.narrative == "api di <b>lereng</b>"  # text stays text
    assert (incident.caller_lat, incident.caller_radius_m) == (CRATER[0], 1000.0)
    [record] = audit.records
    assert record["Operation"] == "incident-created" and record["User"] == "op1"
    assert record["Linkedid"] == "1700000000.1" and record["Incident"] == str(incident.id)


def test_the_chained_digest_pins_the_timeline_row(desk: Incidents, audit: Audit,
                                                  engine: Engine) -> None:
    incident = desk.create("op1", facts("1.1"))
    with Session(engine) as session:
        row = session.scalars(select(IncidentEvent).where(
            IncidentEvent.incident_id == incident.id)).one()
        body = canonical_json({"incident": incident.uuid, "at": row.at.isoformat(),
                               "user": row.user, "kind": row.kind, "agency": row.agency_id,
                               "regency": row.regency_code, "detail": json.loads(row.detail)})
    assert hashlib.sha256(body.encode()).hexdigest() == row.digest == audit.records[0]["Digest"]


def test_nothing_changes_when_the_audit_refuses(desk: Incidents, audit: Audit) -> None:
    incident = desk.create("op1", facts("2.1"))
    audit.down = True
    with pytest.raises(RuntimeError):
        desk.note("op1", incident.id, "tidak tercatat")
    assert [e.kind for e in desk.get(incident.id).timeline] == ["created"]


def test_thirty_calls_about_one_fire_are_one_incident(desk: Incidents) -> None:
    incident = desk.create("op1", facts("3.0"))
    for n in range(1, 30):
        [(proposed, metres)] = desk.proposals(CRATER[0] + 0.001 * (n % 5), CRATER[1], 500)
        assert proposed.id == incident.id and metres < 3000
        desk.link("op1", incident.id, f"3.{n}")
    assert len(desk.get(incident.id).calls) == 30
    with pytest.raises(IncidentError):
        desk.link("op1", incident.id, "3.5")


def test_proposals_respect_distance_time_and_status(desk: Incidents) -> None:
    incident = desk.create("op1", facts("4.0"))
    assert desk.proposals(-7.2575, 112.7521) == []  # Surabaya is far from Bromo
    assert desk.proposals(*CRATER, at=now() + timedelta(hours=2)) == []
    desk.close("op1", incident.id)
    assert desk.proposals(*CRATER) == []


def test_the_operators_map_point_is_kept_beside_the_callers(desk: Incidents) -> None:
    incident = desk.create("op1", facts("5.0"))
    moved = desk.update("op1", incident.id, {"lat": -7.95, "lon": 112.96, "address": "Kawah"})
    assert moved.point == (-7.95, 112.96) and moved.caller_lat == CRATER[0]
    with pytest.raises(IncidentError):
        desk.update("op1", incident.id, {"status": "closed"})
    with pytest.raises(IncidentError):
        desk.update("op1", incident.id, {"narrative": "a\x1b[31mred"})


def test_dispatch_share_and_the_agency_steps(desk: Incidents, engine: Engine) -> None:
    incident = desk.create("op1", facts("6.0"))
    with pytest.raises(IncidentError, match="share it first"):
        desk.dispatch("op1", incident.id, "damkar-malang", webhook_body("x"))
    desk.share("op1", incident.id, "35.07")
    desk.dispatch("op-malang", incident.id, "damkar-malang", webhook_body("x"))
    desk.dispatch("op1", incident.id, "damkar-probolinggo", webhook_body("x"))
    with Session(engine) as session:
        assert session.scalars(select(Outbox)).all() == []  # no webhook configured
    for step in ("acknowledged", "en-route", "on-scene"):
        record = desk.step("damkar", incident.id, "damkar-malang", step)
    assert record.status == "on-scene"
    with pytest.raises(IncidentError):
        desk.step("damkar", incident.id, "damkar-malang", "acknowledged")
    desk.step("damkar", incident.id, "damkar-malang", "closed")
    closed = desk.close("op1", incident.id)
    kinds = [e.kind for e in closed.timeline]
    assert kinds == ["created", "shared", "dispatched", "dispatched", "acknowledged",
                     "en-route", "on-scene", "closed", "closed"]
    malang = next(h for h in closed.handoffs if h.agency_id == "damkar-malang")
    assert malang.dispatched_at <= malang.acknowledged_at <= malang.on_scene_at  # type: ignore[operator]


def test_an_unacknowledged_handoff_escalates_once(desk: Incidents) -> None:
    incident = desk.create("op1", facts("7.0"))
    desk.dispatch("op1", incident.id, "psc119-probolinggo", webhook_body("x"))  # 60 s
    assert desk.escalate(now() + timedelta(seconds=30)) == []
    [alert] = desk.escalate(now() + timedelta(seconds=61))
    assert alert.agency_id == "psc119-probolinggo" and alert.unacknowledged_alert
    assert desk.escalate(now() + timedelta(seconds=120)) == []
    [row] = desk.open_by_agency()
    assert row.incident_id == incident.id and row.unacknowledged_alert
    desk.step("psc", incident.id, "psc119-probolinggo", "acknowledged")
    assert not desk.open_by_agency()[0].unacknowledged_alert


def test_the_export_borrows_eido_names_and_carries_pidf_lo(desk: Incidents) -> None:
    incident = desk.create("op1", facts("8.0"), note="Kebakaran hutan")
    incident = desk.update("op1", incident.id, {"lat": -7.95, "lon": 112.96})
    document: dict[str, Any] = eido(desk.note("op1", incident.id, "<script>x</script>"),
                                    "112.test")
    assert document["sendingSystemIdentifier"] == "112.test"
    [component] = document["incidentComponent"]
    assert component["incidentTypeCommonRegistryText"] == "fire"
    assert document["notesComponent"][0]["noteText"] == "<script>x</script>"
    caller, operator = document["locationComponent"]
    parsed = parse_pidf(caller["locationByValue"])
    assert isinstance(parsed, PidfLocation) and parsed.best is not None
    assert parsed.method == "Cell"
    assert parsed.best.lat is not None and round(parsed.best.lat, 3) == CRATER[0]
    assert parsed.best.radius_m == 1000
    assert "usage-rules" in caller["locationByValue"]
    assert isinstance(parse_pidf(operator["locationByValue"]), PidfLocation)


def test_signatures_verify_and_refuse_tampering_and_replay() -> None:
    body = b'{"a": 1}'
    stamp = int(time.time())
    header = sign("secret", stamp, body)
    assert verify("secret", header, body)
    assert not verify("secret", header, body + b" ")
    assert not verify("other", header, body)
    assert not verify("secret", header, body, at=stamp + 3600)
    assert [backoff_s(n, 1, 10) for n in range(1, 6)] == [1, 2, 4, 8, 10]


def test_a_plain_http_webhook_is_refused_outside_the_sandbox(tmp_path: Path,
                                                            regions: Regions) -> None:
    path = tmp_path / "agencies.toml"
    path.write_text('[[agency]]\nid = "x-1"\nname = "X"\nkind = "polri"\nregency = "35.13"\n'
                    'webhook_url = "http://127.0.0.1:9/hook"\n')
    with pytest.raises(AgencyError, match="https"):
        load_agencies(path, regions)
    assert load_agencies(path, regions, allow_plain_http=True)["x-1"].number == "110"
    path.write_text(path.read_text().replace("127.0.0.1", "agency.example"))
    with pytest.raises(AgencyError, match="https"):
        load_agencies(path, regions, allow_plain_http=True)
    path.write_text(path.read_text().replace('"35.13"', '"99.99"'))
    with pytest.raises(AgencyError):
        load_agencies(path, regions, allow_plain_http=True)


def test_a_call_handed_over_keeps_its_incident_which_the_other_regency_then_sees(
        desk: Incidents) -> None:
    incident = desk.create("op1", facts("9.0"))
    desk.follow_handover("op1", "9.0", "35.08")
    desk.follow_handover("op1", "9.0", "35.08")  # the second time changes nothing
    assert desk.get(incident.id).shared_with == ("35.08",)
    assert desk.of_call("9.0") == [incident.id]
