"""The console's API on a real SQLite audit store: auth, CSRF, throttling, regency scope,
replay of missed live events. Its AMI session points at a port nobody listens on, so the
console reports AMI as down, which is also what these tests check it says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from telephony import config as config_mod
from telephony.ami import AMIConnection, Frame
from telephony.console import accounts
from telephony.console.accounts import Role
from telephony.console.app import create_app
from telephony.console.live import Hub
from telephony.location import load_regions
from telephony.operators.roster import load_roster
from telephony.store import open_database
from tests.harness.net import free_port

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    config = config_mod.load(None, env={}, overrides=[
        f"audit.database_url=sqlite:///{tmp_path / 'telephony.db'}"])
    engine = open_database(config)
    regions = load_regions(CONFIG / "regions.toml")
    roster = load_roster(CONFIG / "operators.toml", regions)
    port = free_port()

    def ami(on_event: object, on_connect: object) -> AMIConnection:
        return AMIConnection("127.0.0.1", port, "x", "y", on_event=on_event,  # type: ignore[arg-type]
                             on_connect=on_connect, backoff_max_s=1.0)  # type: ignore[arg-type]

    accounts.add_user(engine, "malang", Role.OPERATOR, "op3573", "password-3573")
    accounts.add_user(engine, "surabaya", Role.OPERATOR, "op3578", "password-3578")
    accounts.add_user(engine, "boss", Role.SUPERVISOR, None, "password-boss")
    hub = Hub(engine, regions, roster, ami)
    hub.app_config = config  # type: ignore[attr-defined]
    yield hub
    engine.dispose()


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    app = create_app(hub.app_config, hub)  # type: ignore[attr-defined]
    with TestClient(app) as test_client:
        yield test_client


def login(client: TestClient, name: str, password: str) -> str:
    answer = client.post("/api/login", json={"name": name, "password": password})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["csrf_token"]
    return token


def surabaya_call(hub: Hub, linkedid: str = "1700000000.1") -> None:
    for fields in (
        {"Event": "Newchannel", "Uniqueid": linkedid, "Linkedid": linkedid,
         "CallerIDNum": "081230000001"},
        {"Event": "UserEvent", "UserEvent": "IVRLocation", "Linkedid": linkedid,
         "Uniqueid": linkedid, "CallerE164": "+6281230000001", "Source": "cell-route",
         "Lat": "-7.265", "Lon": "112.74", "Radius": "1000", "RegencyCode": "35.78",
         "CellId": "LTE:510-10-4660-74565", "Method": "routing-table", "Confidence": "high"},
    ):
        hub._fold(Frame.of(fields))


def test_without_a_login_the_api_refuses_with_401(client: TestClient) -> None:
    for path in ("/api/me", "/api/calls", "/api/callbacks", "/api/calls/1.1"):
        assert client.get(path).status_code == 401, path
    assert client.post("/api/presence", json={"state": "available"}).status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_state_change_without_the_csrf_token_is_refused(client: TestClient) -> None:
    token = login(client, "malang", "password-3573")
    answer = client.post("/api/presence", json={"state": "paused", "reason": "break"})
    assert answer.status_code == 403 and "X-CSRF-Token" in answer.json()["detail"]
    wrong = client.post("/api/presence", json={"state": "paused", "reason": "break"},
                        headers={"X-CSRF-Token": token[::-1]})
    assert wrong.status_code == 403
    # With the token the request gets through auth, and AMI being down is said in words.
    right = client.post("/api/presence", json={"state": "paused", "reason": "break"},
                        headers={"X-CSRF-Token": token})
    assert right.status_code == 503 and "AMI" in right.json()["detail"]


def test_the_session_cookie_is_httponly_and_samesite(client: TestClient) -> None:
    answer = client.post("/api/login", json={"name": "boss", "password": "password-boss"})
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_failed_logins_are_rate_limited(client: TestClient) -> None:
    for _ in range(5):
        bad = client.post("/api/login", json={"name": "malang", "password": "wrong-password"})
        assert bad.status_code == 401
    blocked = client.post("/api/login", json={"name": "malang", "password": "password-3573"})
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers


def test_an_operator_cannot_read_another_regencys_call(client: TestClient, hub: Hub) -> None:
    surabaya_call(hub)
    login(client, "malang", "password-3573")
    assert client.get("/api/calls/1700000000.1").status_code == 403
    assert client.get("/api/calls").json() == []
    client.cookies.clear()
    login(client, "surabaya", "password-3578")
    card = client.get("/api/calls/1700000000.1").json()
    assert card["regency_name"] == "Kota Surabaya" and card["number"] == "+6281230000001"
    assert card["location"]["kind"] == "network" and card["method"] == "routing-table"
    client.cookies.clear()
    login(client, "boss", "password-boss")
    assert client.get("/api/calls/1700000000.1").status_code == 200


def test_bad_input_gets_a_clear_4xx(client: TestClient, hub: Hub) -> None:
    surabaya_call(hub)
    token = login(client, "surabaya", "password-3578")
    headers = {"X-CSRF-Token": token}
    for path, body in (
        ("/api/calls/1700000000.1/classification", {"category": "nonsense"}),
        ("/api/calls/1700000000.1/classification", {"category": "prank", "note": "x" * 201}),
        ("/api/calls/1700000000.1/classification", {"category": "prank", "note": "a\x00b"}),
        ("/api/calls/1700000000.1/handover", {"regency_code": "35.78;Dial(x)"}),
        ("/api/presence", {"state": "paused", "reason": "nap"}),
    ):
        answer = client.post(path, json=body, headers=headers)
        assert answer.status_code == 422, (path, body, answer.text)
    assert client.get("/api/calls/bad%0Aid").status_code == 422


def test_a_reconnecting_client_gets_a_snapshot_and_every_event_it_missed(
    client: TestClient, hub: Hub
) -> None:
    login(client, "surabaya", "password-3578")
    with client.websocket_connect("/api/live") as socket:
        first = json.loads(socket.receive_text())
    epoch, seen = first["epoch"], first["seq"]
    surabaya_call(hub, "1700000000.2")  # while this client is away
    surabaya_call(hub, "1700000000.3")
    with client.websocket_connect(f"/api/live?since={seen}&epoch={epoch}") as socket:
        again = json.loads(socket.receive_text())
    assert again["complete"] is True
    missed = [e["call"]["linkedid"] for e in again["missed"] if e["kind"] == "call"]
    assert "1700000000.2" in missed and "1700000000.3" in missed
    assert [e["seq"] for e in again["missed"]] == sorted(e["seq"] for e in again["missed"])
    assert all(e["seq"] > seen for e in again["missed"])
    assert {c["linkedid"] for c in again["calls"]} >= {"1700000000.2", "1700000000.3"}


def test_openapi_lists_every_action(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/login", "/api/calls/{linkedid}/classification",
                 "/api/calls/{linkedid}/handover", "/api/presence",
                 "/api/callbacks/{item_id}/take", "/api/callbacks/{item_id}/done"):
        assert path in paths
