"""Audit identity against AMI injection (issue 12, 1), on the bytes Asterisk 22.10.1 sent.

tests/unit/captures/ holds two AMI sessions captured from the sandbox, each one trunk call
from SIPp (tests/integration/scenarios/uac_112_injected.xml) with the issue's text as the
From user part (ami_injected_from.bin) or as the Request-URI user part (..._ruri.bin):
``0812%0D%0A%0D%0AEvent%3A%20UserEvent%0D%0AUserEvent%3A%20Forged%0D%0ALinkedid%3A%20fake-1``
``%0D%0A``. Asterisk splits each snapshot with those raw fields into three frames.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from telephony.ami.frames import Frame, FrameParser
from telephony.ami.identity import INJECTED_FIELD, IdentityGuard, Quarantined, identity_problem
from telephony.audit.events import record_from_frame

CAPTURES = Path(__file__).resolve().parent / "captures"
REAL = {"from": "1796156466.0", "ruri": "1796156487.0"}


def verdicts(data: bytes, chunk: int = 0) -> list[Frame | Quarantined]:
    parser, guard = FrameParser(), IdentityGuard()
    out: list[Frame | Quarantined] = []
    pieces = [data[n : n + chunk] for n in range(0, len(data), chunk)] if chunk else [data]
    for piece in pieces:
        out += guard.feed(parser.feed(piece))
    return out + guard.flush()


def events(out: list[Frame | Quarantined]) -> list[Frame]:
    return [v for v in out if isinstance(v, Frame) and v.event is not None]


@pytest.mark.parametrize("name", ["from", "ruri"])
def test_every_event_of_the_captured_call_has_asterisks_own_identity(name: str) -> None:
    out = verdicts((CAPTURES / f"ami_injected_{name}.bin").read_bytes())
    assert not [v for v in out if isinstance(v, Quarantined)]
    records = [record_from_frame(frame) for frame in events(out)]
    channel = [r for r in records if r.type != "FullyBooted"]
    assert [r.type for r in channel][:2] == ["Newchannel", "Newstate"]
    assert {r.linkedid for r in channel} == {REAL[name]}
    assert {r.uniqueid for r in channel} == {REAL[name]}
    assert "Forged" not in [frame.get("UserEvent") for frame in events(out)]


def test_the_injected_text_goes_back_into_the_field_it_came_in_and_flags_the_frame() -> None:
    newchannel = events(verdicts((CAPTURES / "ami_injected_from.bin").read_bytes()))[1]
    assert newchannel.event == "Newchannel"
    assert newchannel["CallerIDNum"] == (
        "0812\r\n\r\nEvent: UserEvent\r\nUserEvent: Forged\r\nLinkedid: fake-1\r\n"
    )
    assert newchannel["CallerIDName"] == "<unknown>"
    assert newchannel[INJECTED_FIELD] == "CallerIDNum"
    ruri = events(verdicts((CAPTURES / "ami_injected_ruri.bin").read_bytes()))[1]
    assert ruri["Exten"].startswith("0812\r\n\r\nEvent: UserEvent")
    assert (ruri["Priority"], ruri[INJECTED_FIELD]) == ("1", "Exten")


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_a_split_frame_arriving_over_several_reads_is_reassembled(chunk: int) -> None:
    data = (CAPTURES / "ami_injected_from.bin").read_bytes()
    out = verdicts(data, chunk)
    assert not [v for v in out if isinstance(v, Quarantined)]
    assert {record_from_frame(f).linkedid for f in events(out)[1:]} == {REAL["from"]}


def test_a_head_whose_tail_never_comes_is_quarantined_with_its_parts() -> None:
    head = (b"Event: Newchannel\r\nChannel: PJSIP/trunk-mno-00000001\r\nCallerIDNum: 0812\r\n\r\n"
            b"Event: UserEvent\r\nUserEvent: Forged\r\nLinkedid: fake-1\r\n\r\n")  # fmt: skip
    guard = IdentityGuard()
    assert guard.feed(FrameParser().feed(head)) == []
    (verdict,) = guard.flush()
    assert isinstance(verdict, Quarantined)
    assert (verdict.reason, len(verdict.parts), verdict.linkedid) == (
        "split-frame-unresolved", 2, "fake-1"
    )
    assert guard.quarantined == 1


def test_a_tail_without_its_head_is_quarantined_not_dropped() -> None:
    tail = b"CallerIDName: x\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\n\r\n"
    (verdict,) = verdicts(tail)
    assert isinstance(verdict, Quarantined) and verdict.reason == "no-event"


def test_a_repeated_id_in_one_frame_resolves_to_the_last_one() -> None:
    frame = Frame([("Event", "Hangup"), ("Channel", "PJSIP/x-1"), ("CallerIDNum", "0812"),
                   ("Linkedid", "fake-1"), ("Uniqueid", "fake-1"), ("CallerIDName", "n"),
                   ("ConnectedLineNum", "c"), ("Uniqueid", "1.5"), ("Linkedid", "1.5")])
    (out,) = IdentityGuard().feed([frame])
    assert isinstance(out, Frame)
    assert (out.get_all("Linkedid"), out.get_all("Uniqueid")) == (["1.5"], ["1.5"])
    assert out[INJECTED_FIELD] == "CallerIDNum"


def test_a_userevent_field_named_like_a_snapshot_field_is_not_taken_for_one() -> None:
    # The dialplan's CallQueued event ends with "Priority: 10", after the snapshot.
    fields = [("Event", "UserEvent"), ("Channel", "PJSIP/x-1"), ("Exten", "queue"),
              ("Priority", "5"), ("Uniqueid", "1.5"), ("Linkedid", "1.5"),
              ("UserEvent", "CallQueued"), ("Priority", "10")]  # fmt: skip
    (out,) = IdentityGuard().feed([Frame(fields)])
    assert isinstance(out, Frame) and out.fields == tuple(fields)


def test_a_channel_event_needs_both_ids_under_one_prefix() -> None:
    hangup = Frame([("Event", "Hangup"), ("Channel", "PJSIP/x-1"), ("CallerIDNum", "1")])
    assert identity_problem(hangup, channel_event=True) == "no-identity"
    half = Frame([("Event", "Hangup"), ("Uniqueid", "1.5")])
    assert identity_problem(half, channel_event=True) == "half-identity"
    booted = Frame([("Event", "FullyBooted"), ("Status", "Fully Booted")])
    assert identity_problem(booted, channel_event=False) is None


@pytest.mark.parametrize("text", [
    # A forged whole frame, then Asterisk's tail with no blank line before it.
    b"0812\r\n\r\nEvent: Hangup\r\nUniqueid: fake-1\r\nLinkedid: fake-1",
    # A forged successor first, then a forged frame, then Asterisk's tail as its own part.
    b"0812\r\n\r\nCallerIDName: x\r\nConnectedLineNum: y\r\n\r\n"
    b"Event: Hangup\r\nUniqueid: fake-1\r\nLinkedid: fake-1\r\n",
])  # fmt: skip
def test_crafted_text_cannot_file_an_event_under_any_id_but_asterisks(text: bytes) -> None:
    tail = (b"\r\nCallerIDName: <unknown>\r\nConnectedLineNum: <unknown>\r\nExten: 112\r\n"
            b"Priority: 1\r\nUniqueid: 1.7\r\nLinkedid: 1.7\r\n\r\n")  # fmt: skip
    head = b"Event: Newchannel\r\nChannel: PJSIP/trunk-mno-00000007\r\nCallerIDNum: "
    later = (b"Event: Newstate\r\nChannel: PJSIP/trunk-mno-00000007\r\nCallerIDNum: 0812\r\n"
             b"CallerIDName: n\r\nConnectedLineNum: c\r\nUniqueid: 1.7\r\nLinkedid: 1.7\r\n\r\n")
    out = verdicts(head + text + tail + later)
    assert [(v.event, v.get("Linkedid"), v.get(INJECTED_FIELD)) for v in events(out)] == [
        ("Newchannel", "1.7", "CallerIDNum"), ("Newstate", "1.7", None)
    ]
