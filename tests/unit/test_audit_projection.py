from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telephony.ami.frames import Frame
from telephony.audit.projection import (
    CallState,
    LegRole,
    LegState,
    Outcome,
    Phase,
    apply,
    endpoint_of,
)

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
L = "1740816000.10"  # caller channel uniqueid == linkedid
OP = "1740816000.11"
TRUNK = "1740816000.12"


def ev(name: str, uniqueid: str = L, **fields: str) -> Frame:
    return Frame([("Event", name), ("Uniqueid", uniqueid), ("Linkedid", L), *fields.items()])


def dial(name: str, dest: str, channel: str, **fields: str) -> Frame:
    return ev(name, DestUniqueid=dest, DestChannel=channel, DestLinkedid=L, **fields)


def run(events: list[tuple[float, Frame]]) -> tuple[CallState, dict[str, LegState]]:
    call: CallState | None = None
    legs: dict[str, LegState] = {}
    for seconds, frame in events:
        change = apply(frame, T0 + timedelta(seconds=seconds), call, legs)
        call = change.call or call
        legs.update({leg.uniqueid: leg for leg in change.legs})
    assert call is not None
    return call, legs


def arrival() -> list[tuple[float, Frame]]:
    return [
        (0, ev("Newchannel", Channel="PJSIP/trunk-telkomsel-0000000a", CallerIDNum="+628123")),
        (1, ev("Newstate", ChannelState="6")),
        (5, ev("UserEvent", UserEvent="IVRChoice", Language="id")),
        (
            6,
            ev(
                "UserEvent",
                UserEvent="IVRLocation",
                Source="cell",
                Lat="-6.2",
                Lon="106.8",
                Radius="1500",
                CellId="510-10-1234-5678",
                RegencyCode="3171",
            ),
        ),
        (8, ev("UserEvent", UserEvent="IVRChoice", EmergencyType="medical")),
        (9, ev("QueueCallerJoin", Queue="jakarta", Position="1")),
    ]


def test_answered_in_queue() -> None:
    call, legs = run(
        [
            *arrival(),
            (10, dial("DialBegin", OP, "PJSIP/op1001-0000000b")),
            (10, dial("AgentCalled", OP, "PJSIP/op1001-0000000b", MemberName="op1001")),
            (10, ev("Newchannel", OP, Channel="PJSIP/op1001-0000000b")),
            (14, ev("Newstate", OP, ChannelState="6")),
            (14, dial("DialEnd", OP, "PJSIP/op1001-0000000b", DialStatus="ANSWER")),
            (14, ev("QueueCallerLeave", Queue="jakarta")),
            (14, dial("AgentConnect", OP, "PJSIP/op1001-0000000b", MemberName="op1001")),
            (14, ev("BridgeEnter", BridgeUniqueid="b1")),
            (15, ev("MixMonitorStart")),
            (90, ev("Hangup", OP, Cause="16", **{"Cause-txt": "Normal Clearing"})),
            (90, ev("Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"})),
        ]
    )
    assert call.outcome is Outcome.ANSWERED
    assert call.caller == "+628123"
    assert (call.emergency_type, call.ivr_language, call.regency_code) == ("medical", "id", "3171")
    assert (call.location_lat, call.location_lon, call.location_radius_m) == (-6.2, 106.8, 1500.0)
    assert call.ivr_done_at == T0 + timedelta(seconds=8)
    assert call.queued_at == T0 + timedelta(seconds=9)
    assert call.first_ring_at == T0 + timedelta(seconds=10)
    assert call.answer_seconds == 14.0 and call.answering_operator == "op1001"
    assert call.recording_started_at == T0 + timedelta(seconds=15)
    assert call.ended_at == T0 + timedelta(seconds=90) and call.phase is Phase.ENDED
    assert not call.overflowed
    assert legs[L].role is LegRole.CALLER and legs[L].endpoint == "PJSIP/trunk-telkomsel"
    assert legs[OP].role is LegRole.OPERATOR and legs[OP].dial_status == "ANSWER"
    assert legs[OP].answered_at == T0 + timedelta(seconds=14)
    assert (legs[L].hangup_cause, legs[L].hangup_cause_text) == (16, "Normal Clearing")


def test_abandoned_in_ivr() -> None:
    call, _ = run([*arrival()[:3], (7, ev("Hangup", Cause="16"))])
    assert call.outcome is Outcome.ABANDONED_IN_IVR and call.answered_at is None


def test_abandoned_in_queue() -> None:
    call, _ = run(
        [
            *arrival(),
            (10, dial("AgentCalled", OP, "PJSIP/op1001-0000000b", MemberName="op1001")),
            (25, dial("DialEnd", OP, "PJSIP/op1001-0000000b", DialStatus="CANCEL")),
            (25, ev("QueueCallerAbandon", Queue="jakarta")),
            (25, ev("QueueCallerLeave", Queue="jakarta")),
            (25, ev("Hangup", Cause="16")),
        ]
    )
    assert call.outcome is Outcome.ABANDONED_IN_QUEUE


def test_overflowed_then_answered_by_other_centre() -> None:
    call, legs = run(
        [
            *arrival(),
            (40, ev("QueueCallerLeave", Queue="jakarta")),
            (40, ev("Newchannel", TRUNK, Channel="PJSIP/psap-bogor-0000000c")),
            (40, dial("DialBegin", TRUNK, "PJSIP/psap-bogor-0000000c")),
            (47, dial("DialEnd", TRUNK, "PJSIP/psap-bogor-0000000c", DialStatus="ANSWER")),
            (120, ev("Hangup", Cause="16")),
        ]
    )
    assert call.overflowed and call.outcome is Outcome.OVERFLOWED_THEN_ANSWERED
    assert call.answering_operator == "PJSIP/psap-bogor" and call.answer_seconds == 47.0
    assert legs[TRUNK].role is LegRole.OPERATOR


def test_overflow_to_second_queue() -> None:
    call, _ = run(
        [
            *arrival(),
            (40, ev("QueueCallerLeave", Queue="jakarta")),
            (40, ev("QueueCallerJoin", Queue="overflow")),
            (55, dial("AgentConnect", OP, "PJSIP/op2001-0000000d", MemberName="op2001")),
            (99, ev("Hangup", Cause="16")),
        ]
    )
    assert call.outcome is Outcome.OVERFLOWED_THEN_ANSWERED and call.queue == "overflow"
    assert call.queued_at == T0 + timedelta(seconds=9)


@pytest.mark.parametrize("cause", ["34", "38", "41"])
def test_abnormal_cause_unanswered_is_failed(cause: str) -> None:
    call, _ = run([*arrival()[:1], (1, ev("Hangup", Cause=cause))])
    assert call.outcome is Outcome.FAILED


def test_transfer_target_and_callback_roles() -> None:
    target = "1740816000.20"
    call, legs = run(
        [
            *arrival(),
            (14, dial("AgentConnect", OP, "PJSIP/op1001-0000000b", MemberName="op1001")),
            (30, ev("BlindTransfer", TransfererUniqueid=OP, Extension="2001")),
            (31, dial("DialBegin", target, "PJSIP/doctor-0000000e")),
        ]
    )
    assert call.transferred and legs[target].role is LegRole.TRANSFER_TARGET
    callback, legs = run(
        [(0, ev("Newchannel", Channel="PJSIP/x", ChanVariable="CALLROLE=callback"))]
    )
    assert callback.is_callback and legs[L].role is LegRole.CALLBACK


def test_events_that_change_nothing_return_no_change() -> None:
    call, legs = run(arrival())
    change = apply(ev("BridgeEnter", BridgeUniqueid="b"), T0, call, legs)
    assert change.call is None and change.legs == ()
    assert apply(Frame([("Event", "FullyBooted")]), T0, None, {}).call is None


def test_late_events_do_not_reopen_or_move_arrival() -> None:
    call, legs = run([*arrival(), (30, ev("Hangup", Cause="16"))])
    later = apply(ev("Hangup", Cause="34"), T0 + timedelta(seconds=40), call, legs)
    assert later.call is None
    assert call.arrived_at == T0 and call.outcome is Outcome.ABANDONED_IN_QUEUE


@pytest.mark.parametrize(
    ("channel", "endpoint"),
    [
        ("PJSIP/op1001-0000002a", "PJSIP/op1001"),
        ("Local/1001@agents-0000000f;2", "Local/1001@agents"),
        ("PJSIP/trunk-a", "PJSIP/trunk-a"),
    ],
)
def test_endpoint_of(channel: str, endpoint: str) -> None:
    assert endpoint_of(channel) == endpoint


def test_every_projected_event_is_requested_from_ami() -> None:
    from telephony.audit.projection import _HANDLERS
    from telephony.contract import AUDITED_EVENTS

    assert set(_HANDLERS) <= set(AUDITED_EVENTS)
