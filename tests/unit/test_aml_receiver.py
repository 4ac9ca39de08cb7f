"""The AML receiver's answers, senders and rate limit, and the console's matching of fixes
to calls (a real SQLite store; the console's AMI points at a port nobody listens on)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from telephony import config as config_mod
from telephony.ami import AMIConnection, Frame
from telephony.aml import store
from telephony.aml.fix import Fix, Method
from telephony.aml.matching import CallWindow, call_for
from telephony.aml.receiver import create_app
from telephony.aml.routing import Move, decide, position
from telephony.aml.senders import (
    Authenticator,
    RateLimit,
    SenderError,
    add_sender,
    load_senders,
    remove_sender,
)
from telephony.console.board import Board
from telephony.console.handset import HandsetDesk
from telephony.console.live import Hub
from telephony.location import load_regions
from telephony.operators.roster import load_roster
from telephony.store import open_database
from tests.harness.net import free_port

CONFIG = Path(__file__).resolve().parents[2] / "config"
SECRET = "telkomsel-shared-secret"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[config_mod.Config, Hub]]:
    config = config_mod.load(None, env={}, overrides=[
        f"audit.database_url=sqlite:///{tmp_path / 'telephony.db'}",
        f"aml.senders_file={tmp_path / 'aml.toml'}", "aml.rate_per_s=0.001", "aml.rate_burst=3"])
    add_sender(Path(config.aml.senders_file), "telkomsel", ["127.0.0.0/8"], SECRET)
    add_sender(Path(config.aml.senders_file), "far", ["10.9.0.0/16"], SECRET)
    engine = open_database(config)
    regions = load_regions(CONFIG / "regions.toml")
    port = free_port()

    def ami(on_event: object, on_connect: object) -> AMIConnection:
        return AMIConnection("127.0.0.1", port, "x", "y", on_event=on_event,  # type: ignore[arg-type]
                             on_connect=on_connect, backoff_max_s=1.0)  # type: ignore[arg-type]

    hub = Hub(engine, regions, load_roster(CONFIG / "operators.toml", regions), ami)
    yield config, hub
    engine.dispose()


def basic(name: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}",
            "Content-Type": "application/x-www-form-urlencoded"}


def body(number: str, lat: float = -7.8712, lon: float = 112.5265) -> str:
    now_ms = int(time.time() * 1000)
    return urlencode({"v": "1", "emergency_number": "112", "source": "call",
                      "time": now_ms, "location_latitude": lat, "location_longitude": lon,
                      "location_time": now_ms - 1000, "location_accuracy": "8",
                      "location_source": "gps", "device_number": number})


def test_senders_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "aml.toml"
    add_sender(path, "xl", ["127.0.0.1/32", "192.0.2.0/24"], SECRET)
    add_sender(path, "google", ["127.0.0.0/8"], certificate_name="els.google.example")
    senders = load_senders(path)
    assert [s.name for s in senders] == ["xl", "google"]
    assert senders[0].secret_hash.startswith("$argon2id$") and SECRET not in path.read_text()
    assert path.stat().st_mode & 0o077 == 0
    remove_sender(path, "xl")
    assert [s.name for s in load_senders(path)] == ["google"]
    with pytest.raises(SenderError):
        add_sender(path, "short", ["127.0.0.1/32"], "tiny")
    with pytest.raises(SenderError):
        add_sender(path, "bad", ["not-a-net"], SECRET)


def test_rate_limit_per_sender() -> None:
    now = [0.0]
    limit = RateLimit(2.0, 2, clock=lambda: now[0])
    assert [limit.allow("a") for _ in range(3)] == [True, True, False]
    assert limit.allow("b")
    now[0] = 0.5
    assert limit.allow("a") and not limit.allow("a")


def test_answers_and_metrics(setup: tuple[config_mod.Config, Hub]) -> None:
    config, hub = setup
    received: list[store.Stored] = []
    auth = Authenticator(load_senders(Path(config.aml.senders_file)))
    app = create_app(config.aml, hub.engine, auth, lambda fix, raw: received.append(fix))
    with TestClient(app, client=("127.0.0.1", 40000)) as client:
        ok = client.post("/aml/v1", content=body("+6281390000111"),
                         headers=basic("telkomsel", SECRET))
        assert ok.status_code == 200 and ok.text.startswith("OK accepted")
        # Out of range: still the spec's 200 (the sender must not resend), with the reason.
        bad = client.post("/aml/v1", content=body("+6281390000111", lat=-95),
                          headers=basic("telkomsel", SECRET))
        assert bad.status_code == 200 and "latitude-out-of-range" in bad.text
        assert client.post("/aml/v1", content=body("+62813")).status_code == 401
        assert client.post("/aml/v1", content=body("+62813"),
                           headers=basic("telkomsel", "wrong-secret-wrong")).status_code == 401
        assert client.post("/aml/v1", content=body("+62813"),
                           headers=basic("far", SECRET)).status_code == 403
        sms = client.post("/aml/v1/sms", headers=basic("telkomsel", SECRET), data={
            "from": "081390000112", "text": 'A"ML=1;lt=-7.87120;lg=+112.52650;rd=12;top='
            + time.strftime("%Y%m%d%H%M%S", time.gmtime())})
        assert sms.status_code == 200 and sms.text.startswith("OK accepted"), sms.text
        limited = client.post("/aml/v1", content=body("+6281390000111"),
                              headers=basic("telkomsel", SECRET))
        assert limited.status_code == 429
        metrics = client.get("/aml/v1/metrics").text
    assert 'result="unauthenticated"} 2' in metrics and 'result="forbidden"} 1' in metrics
    assert 'result="rate-limited"} 1' in metrics
    assert [f.transport for f in received] == ["https", "https", "sms"]
    assert received[2].number == "+6281390000112"
    stored = store.fixes(hub.engine)
    assert {f.rejected for f in stored} == {"", "latitude-out-of-range"}
    assert all(f.raw_sha256 for f in stored)


def test_call_for_the_window() -> None:
    calls = [CallWindow("old", "+62811", 100.0, 160.0), CallWindow("new", "+62811", 500.0, None)]
    assert call_for("+62811", 520.0, calls, 120, 300) == "new"
    assert call_for("+62811", 450.0, calls, 120, 300) == "new"  # before the call
    assert call_for("+62811", 300.0, calls, 120, 300) == "old"  # after it ended
    assert call_for("+62811", 470.0, calls[:1], 120, 300) is None
    assert call_for("", 520.0, calls, 120, 300) is None


def _frame(**fields: str) -> Frame:
    return Frame(list(fields.items()))


def test_fix_before_the_call_is_matched_when_it_comes(
        setup: tuple[config_mod.Config, Hub]) -> None:
    config, hub = setup
    now = [time.time()]
    desk = HandsetDesk(config.aml, hub, clock=lambda: now[0])
    hub.handset = desk
    desk.start()
    try:
        early = store.record(hub.engine, _fix("+6281390000222", now[0]), sender="telkomsel",
                             transport="https", raw="raw", received_at=now[0])
        desk.received(early, "raw")
        _wait(lambda: len(desk.unmatched()) == 1)
        now[0] += 10  # the call comes 10 s after its fix
        hub._fold(_frame(Event="Newchannel", Uniqueid="1.1", Linkedid="1.1",
                         CallerIDNum="081390000222", Timestamp=str(now[0])))
        hub._fold(_frame(Event="UserEvent", UserEvent="IVRLocation", Uniqueid="1.1",
                         Linkedid="1.1", CallerE164="+6281390000222", Source="cell",
                         Lat="-8.13", Lon="112.57", Radius="3000", RegencyCode="35.07"))
        _wait(lambda: hub.card("1.1") is not None and hub.card("1.1").handset is not None)  # type: ignore[union-attr]
        card = hub.card("1.1")
        assert card is not None and card.handset is not None
        assert (card.handset.id, card.handset.accuracy_m) == (early.id, 8.0)
        assert card.location is not None and card.location.lat == -8.13  # not replaced
        assert desk.unmatched() == []
        assert store.fixes(hub.engine, linkedid="1.1")[0].id == early.id
        # A fix for a number that never calls leaves the live view after the window.
        stray = store.record(hub.engine, _fix("+6281390000333", now[0]), sender="telkomsel",
                             transport="https", raw="raw", received_at=now[0])
        desk.received(stray, "raw")
        _wait(lambda: [f.id for f in desk.unmatched()] == [stray.id])
        now[0] += config.aml.window_before_s + 1
        assert desk.unmatched() == []
        assert [f.id for f in store.fixes(hub.engine, unmatched=True)] == [stray.id]
    finally:
        desk.stop()


def _fix(number: str, at: float) -> Fix:
    return Fix("https", number, -7.8712, 112.5265, 8.0, at - 1, Method.GNSS)


def _wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_routing_decides_only_for_waiting_callers_with_a_good_fix() -> None:
    regions = load_regions(CONFIG / "regions.toml")
    queues = {"reg-3579", "reg-3507"}
    batu = (-7.8705, 112.5262)
    assert decide(*batu, 20, "35.07", "queued", regions, queues, 500) == Move("35.79", "reg-3579")
    assert decide(*batu, 20, "35.07", "ivr", regions, queues, 500) is not None
    assert decide(*batu, 600, "35.07", "queued", regions, queues, 500) is None  # too coarse
    assert decide(*batu, 20, "35.07", "ringing", regions, queues, 500) is None
    assert decide(*batu, 20, "35.79", "queued", regions, queues, 500) is None  # already there
    assert decide(*batu, 20, "35.07", "queued", regions, {"reg-3507"}, 500) is None
    assert position(100.0, {"a": 90.0, "b": 120.0, "c": 99.9}) == 3
    assert position(100.0, {}) == 1


def test_the_board_shows_the_move_and_why() -> None:
    board = Board({})
    board.apply(_frame(Event="Newchannel", Uniqueid="2.1", Linkedid="2.1", Channel="PJSIP/t-1"))
    board.apply(_frame(Event="QueueCallerJoin", Uniqueid="2.1", Linkedid="2.1", Queue="reg-3507"))
    board.apply(_frame(Event="UserEvent", UserEvent="AMLRoute", Uniqueid="2.1", Linkedid="2.1",
                       From="reg-3507", To="reg-3579", RegencyCode="35.79"))
    board.apply(_frame(Event="QueueCallerJoin", Uniqueid="2.1", Linkedid="2.1", Queue="reg-3579"))
    call = board.get("2.1")
    assert call is not None and call.channel == "PJSIP/t-1" and call.regency_code == "35.79"
    assert [(h.queue, h.reason) for h in call.hops] == [("reg-3507", "queued"),
                                                        ("reg-3579", "handset-location")]
