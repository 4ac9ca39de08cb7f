"""The console's board (pure): AMI events in, ring cards and who may see them out."""

from __future__ import annotations

from pathlib import Path

from telephony.ami import Frame
from telephony.console.board import Board
from telephony.console.live import Viewer, can_see, viewer_for
from telephony.console.schema import Card
from telephony.location import load_regions
from telephony.operators.roster import Operator

CONFIG = Path(__file__).resolve().parents[2] / "config"
LINKEDID = "1700000000.7"
OPS = {"PJSIP/op3578": "op3578", "PJSIP/op3573": "op3573"}


def frame(**fields: str) -> Frame:
    return Frame.of({"Linkedid": LINKEDID, **fields})


def fold(board: Board, *frames: Frame) -> list[str | None]:
    return [board.apply(f) for f in frames]


def arrival(number: str = "081230000001") -> Frame:
    return frame(Event="Newchannel", Uniqueid=LINKEDID, CallerIDNum=number,
                 Timestamp="1700000000.5")


def location(**extra: str) -> Frame:
    fields = {"Event": "UserEvent", "UserEvent": "IVRLocation", "CallerE164": "+6281230000001",
              "Source": "cell-route", "Lat": "-7.26", "Lon": "112.74", "Radius": "1000",
              "RegencyCode": "35.78", "Method": "routing-table", "Confidence": "high",
              "CallerState": "available"}
    return frame(**{**fields, **extra})


def test_a_call_rings_an_operator_then_is_answered_then_ends_into_recent() -> None:
    board = Board(OPS, clock=lambda: 5.0)
    changed = fold(
        board, arrival(),
        frame(Event="UserEvent", UserEvent="IVRChoice", EmergencyType="medical", Language="id"),
        location(), frame(Event="QueueCallerJoin", Queue="reg-3578"),
        frame(Event="AgentCalled", Interface="PJSIP/op3578",
              DestChannel="PJSIP/op3578-00000001"))
    assert changed == [LINKEDID] * 5
    call = board.get(LINKEDID)
    assert call is not None and call.arrived_at == 1700000000.5  # Asterisk's stamp
    assert call.phase == "ringing" and call.ringing == {"op3578"}
    assert call.number_kind == "e164" and call.location_kind == "network"
    board.apply(frame(Event="AgentConnect", Interface="PJSIP/op3578",
                      DestChannel="PJSIP/op3578-00000001"))
    assert call.phase == "connected" and call.answered_by == "op3578"
    assert call.channels["op3578"] == "PJSIP/op3578-00000001"
    board.apply(frame(Event="Hangup", Uniqueid=LINKEDID))
    assert call.phase == "ended" and LINKEDID in board.recent and LINKEDID not in board.active


def test_withheld_no_number_and_handset_locations() -> None:
    board = Board(OPS)
    fold(board, arrival("anonymous"), location(CallerE164="", CallerState="withheld",
                                               Source="pidf-lo"))
    call = board.get(LINKEDID)
    assert call is not None
    assert call.number_kind == "withheld" and call.location_kind == "handset"
    call.caller_state = "no-number"
    assert call.number_kind == "none"


def test_events_of_unknown_calls_and_bad_values_change_nothing() -> None:
    board = Board(OPS)
    assert board.apply(frame(Event="AgentCalled", Interface="PJSIP/op3578")) is None
    assert board.apply(Frame.of({"Event": "Hangup"})) is None
    board.apply(arrival())
    board.apply(location(Lat="north", Lon="", Radius="wide"))
    call = board.get(LINKEDID)
    assert call is not None and call.location_kind == "none" and call.radius_m is None


def test_a_console_classification_note_comes_back_exactly_as_typed() -> None:
    board = Board(OPS)
    board.apply(arrival())
    board.apply(frame(Event="UserEvent", UserEvent="ConsoleAction", Operation="classify",
                      Category="prank", Note='"two\\nlines <b>"', User="op3578"))
    call = board.get(LINKEDID)
    assert call is not None
    assert call.classification == {"category": "prank", "note": "two\nlines <b>", "by": "op3578"}


def card(regency: str, hops: list[str], offered: list[str]) -> Card:
    return Card.model_validate({
        "linkedid": LINKEDID, "arrived_at": 0, "phase": "queued", "number": "", "number_kind":
        "none", "emergency_type": "", "language": "", "regency_code": regency,
        "regency_name": "", "method": "", "confidence": "", "location": None,
        "hops": [{"queue": q, "at": 0, "reason": "queued"} for q in hops], "ringing": [],
        "offered": offered, "answered_by": "", "ended_at": None, "classification": None,
        "history": None, "nuisance": None})


def test_an_operator_sees_their_regency_and_what_overflows_to_them_a_supervisor_all() -> None:
    regions = load_regions(CONFIG / "regions.toml")
    malang = viewer_for("m", False, Operator("op3573", "m", "35.73", "0" * 32), regions)
    boss = viewer_for("b", True, None, regions)
    surabaya_call = card("35.78", ["reg-3578"], [])
    assert not can_see(malang, surabaya_call)
    assert can_see(boss, surabaya_call)
    assert can_see(malang, card("35.73", ["reg-3573"], []))
    # Kab. Malang (35.07) borders Kota Malang: its overflow queue rings Kota Malang's operators.
    assert can_see(malang, card("35.07", ["reg-3507", "ovf-3507"], []))
    assert not can_see(malang, card("35.07", ["reg-3507"], []))
    assert can_see(malang, card("35.78", ["reg-3578"], ["op3573"]))  # rang their phone
    assert not can_see(Viewer("nobody", False), surabaya_call)
