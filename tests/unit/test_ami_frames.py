from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.ami.frames import ActionFieldError, Frame, FrameParser, encode_action

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
NEWCHANNEL = (
    b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/caller-00000001\r\n"
    b"Uniqueid: 1700000000.1\r\nLinkedid: 1700000000.1\r\n"
    b"ChanVariable: ROLE=caller\r\nChanVariable: LANG=id\r\n\r\n"
)
HANGUP = (
    b"Event: Hangup\r\nUniqueid: 1700000000.1\r\nLinkedid: 1700000000.1\r\n"
    b"Cause: 16\r\nCause-txt: Normal Clearing\r\n\r\n"
)
RESPONSE = b"Response: Success\r\nActionID: 7\r\nPing: Pong\r\nTimestamp: 1.5\r\n\r\n"
STREAM = BANNER + NEWCHANNEL + RESPONSE + HANGUP


def parse_all(chunks: list[bytes]) -> tuple[FrameParser, list[Frame]]:
    parser = FrameParser()
    frames: list[Frame] = []
    for chunk in chunks:
        frames.extend(parser.feed(chunk))
    return parser, frames


def test_banner_then_frames_in_one_read_keep_order() -> None:
    parser, frames = parse_all([STREAM])
    assert parser.version == "9.0.0"
    assert [f.event or f.response for f in frames] == ["Newchannel", "Success", "Hangup"]
    assert frames[0].get_all("ChanVariable") == ["ROLE=caller", "LANG=id"]
    assert frames[0]["uniqueid"] == "1700000000.1"
    assert frames[1].action_id == "7"
    assert frames[2]["Cause-txt"] == "Normal Clearing"


def test_many_events_in_one_read_keep_arrival_order() -> None:
    data = b"".join(b"Event: UserEvent\r\nN: %d\r\n\r\n" % i for i in range(50))
    _, frames = parse_all([data])
    assert [f["N"] for f in frames] == [str(i) for i in range(50)]


@settings(max_examples=60)
@given(st.data())
def test_split_anywhere_gives_same_frames(data: st.DataObject) -> None:
    _, whole = parse_all([STREAM])
    cuts = sorted(
        data.draw(st.lists(st.integers(0, len(STREAM)), max_size=8, unique=True), label="cuts")
    )
    bounds = [0, *cuts, len(STREAM)]
    _, pieces = parse_all([STREAM[a:b] for a, b in itertools.pairwise(bounds)])
    assert pieces == whole


def test_split_at_every_offset() -> None:
    whole = parse_all([STREAM])[1]
    for offset in range(len(STREAM) + 1):
        parser, frames = parse_all([STREAM[:offset], STREAM[offset:]])
        assert parser.version == "9.0.0"
        assert frames == whole, offset


def test_byte_at_a_time() -> None:
    _, frames = parse_all([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert frames == parse_all([STREAM])[1]


def test_bare_lf_and_empty_value_and_colon_in_value() -> None:
    _, frames = parse_all([b"Event: VarSet\nValue: a: b\nEmpty:\n\n"])
    assert frames[0].fields == (("Event", "VarSet"), ("Value", "a: b"), ("Empty", ""))


def test_garbage_is_dropped_and_counted() -> None:
    data = b"hello there\r\n\r\nEvent: Hangup\r\nnot a header\r\n Leading: x\r\nCause: 16\r\n\r\n"
    parser, frames = parse_all([data])
    assert frames == [Frame([("Event", "Hangup"), ("Cause", "16")])]
    assert parser.garbage_lines == 3


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    _, frames = parse_all([b"Event: Newchannel\r\nCallerIDName: \xff\xfeBudi\r\n\r\n"])
    assert frames[0]["CallerIDName"].endswith("Budi")


def test_runaway_line_is_discarded() -> None:
    parser = FrameParser()
    assert parser.feed(b"x" * 70_000) == []
    assert parser.garbage_lines == 1
    assert parser.feed(b"\r\nEvent: Ping\r\n\r\n") == [Frame([("Event", "Ping")])]


def test_legacy_response_follows_output() -> None:
    data = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 3\r\n"
        b"Channel              Location\n\nPJSIP/a-1  s@ivr:1\n--END COMMAND--\r\n\r\n"
        b"Event: FullyBooted\r\n\r\n"
    )
    for offset in range(len(data) + 1):
        _, frames = parse_all([data[:offset], data[offset:]])
        assert frames[0].action_id == "3"
        assert frames[0].get_all("Output") == [
            "Channel              Location",
            "",
            "PJSIP/a-1  s@ivr:1",
        ]
        assert frames[1].event == "FullyBooted"


def test_to_dict_groups_repeated_keys() -> None:
    frame = Frame([("Event", "X"), ("V", "1"), ("V", "2"), ("V", "3")])
    assert frame.to_dict() == {"Event": "X", "V": ["1", "2", "3"]}


def test_encode_action_and_reject_header_injection() -> None:
    data = encode_action("Ping", "a1", {})
    assert data == b"Action: Ping\r\nActionID: a1\r\n\r\n"
    data = encode_action("Originate", "a2", {"Channel": "PJSIP/x"}, {"LANG": "id"})
    assert b"Channel: PJSIP/x\r\n" in data and b"Variable: LANG=id\r\n" in data
    with pytest.raises(ActionFieldError):
        encode_action("Setvar", "a3", {"Value": "x\r\nAction: Hangup"})
