from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from telephony.audit.cel import (
    CelCall,
    call_facts,
    dialled,
    group_calls,
    parse_line,
    parse_lines,
    to_frame,
)
from telephony.audit.events import event_time
from telephony.audit.times import parse_time

CALLER = "1795900596.2"
OPERATOR = "1795900596.3"

# A queued call answered by an operator, as the sandbox's cel_custom wrote it.
ANSWERED_CALL = '''\
"CHAN_START","2026-11-28 21:16:36","1795900596.2","1795900596.2","PJSIP/trunk-mno-00000002","+6281234567890","112","from-trunk-112","","","",""
"ANSWER","2026-11-28 21:16:36","1795900596.2","1795900596.2","PJSIP/trunk-mno-00000002","+6281234567890","s","emergency-112","Answer","","",""
"STREAM_BEGIN","2026-11-28 21:16:37","1795900596.2","1795900596.2","PJSIP/trunk-mno-00000002","+6281234567890","queue","emergency-112","Queue","prov-35,,,,30","","{""class"":""112-waiting""}"
"CHAN_START","2026-11-28 21:16:38","1795900596.3","1795900596.2","PJSIP/op-test-00000003","","s","phone-test","","","",""
"ANSWER","2026-11-28 21:16:39","1795900596.3","1795900596.2","PJSIP/op-test-00000003","112","queue","phone-test","AppQueue","(Outgoing Line)","",""
"BRIDGE_ENTER","2026-11-28 21:16:39","1795900596.3","1795900596.2","PJSIP/op-test-00000003","112","queue","phone-test","AppQueue","(Outgoing Line)","","{""bridge_id"":""2d2a5f1a"",""bridge_technology"":""simple_bridge""}"
"BRIDGE_ENTER","2026-11-28 21:16:39","1795900596.2","1795900596.2","PJSIP/trunk-mno-00000002","+6281234567890","queue","emergency-112","Queue","prov-35","PJSIP/op-test-00000003","{""bridge_id"":""2d2a5f1a"",""bridge_technology"":""simple_bridge""}"
"BRIDGE_EXIT","2026-11-28 21:16:50","1795900596.2","1795900596.2","PJSIP/trunk-mno-00000002","+6281234567890","queue","emergency-112","Queue","prov-35","PJSIP/op-test-00000003","{""bridge_id"":""2d2a5f1a"",""bridge_technology"":""native_rtp""}"
"HANGUP","2026-11-28 21:16:50","1795900596.2","1795900596.2","PJSIP/trunk-mno-00000002","+6281234567890","queue","emergency-112","","","","{""hangupcause"":16,""hangupsource"":""PJSIP/trunk-mno-00000002"",""dialstatus"":""ANSWER""}"
"CHAN_END","2026-11-28 21:16:50","1795900596.2","1795900596.2","PJSIP/trunk-mno-00000002","+6281234567890","queue","emergency-112","","","",""
"HANGUP","2026-11-28 21:16:50","1795900596.3","1795900596.2","PJSIP/op-test-00000003","112","queue","phone-test","AppQueue","(Outgoing Line)","","{""hangupcause"":16,""hangupsource"":""PJSIP/trunk-mno-00000002"",""dialstatus"":""""}"
"CHAN_END","2026-11-28 21:16:50","1795900596.3","1795900596.2","PJSIP/op-test-00000003","112","queue","phone-test","AppQueue","(Outgoing Line)","",""
"LINKEDID_END","2026-11-28 21:16:50","1795900596.3","1795900596.2","PJSIP/op-test-00000003","112","queue","phone-test","AppQueue","(Outgoing Line)","",""
'''  # noqa: E501


def answered_call() -> CelCall:
    parsed = parse_lines(ANSWERED_CALL.splitlines(), UTC)
    assert parsed.skipped == 0
    [call] = group_calls(parsed.records)
    return call


def test_a_row_parses_with_its_extra_json() -> None:
    hangup = ANSWERED_CALL.splitlines()[8]
    record = parse_line(hangup, UTC)
    assert record is not None
    assert (record.event_type, record.uniqueid, record.linkedid) == ("HANGUP", CALLER, CALLER)
    assert record.time == datetime(2026, 11, 28, 21, 16, 50, tzinfo=UTC)
    assert record.channel == "PJSIP/trunk-mno-00000002" and record.caller_num == "+6281234567890"
    assert (record.exten, record.context, record.app_name) == ("queue", "emergency-112", "")
    assert record.extra == {
        "hangupcause": 16,
        "hangupsource": "PJSIP/trunk-mno-00000002",
        "dialstatus": "ANSWER",
    }


def test_text_times_are_read_in_the_given_zone_and_epoch_times_as_they_are() -> None:
    wib = timezone(timedelta(hours=7))
    assert parse_time("2026-11-28 04:00:00", wib) == datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    assert parse_time("2026-11-28 04:00:00.250", UTC) == datetime(
        2026, 11, 28, 4, 0, 0, 250000, tzinfo=UTC
    )
    assert parse_time("1795900596.123456") == datetime.fromtimestamp(1795900596, UTC).replace(
        microsecond=123456
    )
    assert parse_time("1795900596") == datetime.fromtimestamp(1795900596, UTC)
    for garbage in ("yesterday", "", "99999999999999999999", "0001-01-01 00:00:00", "\u00b2"):
        assert parse_time(garbage, timezone(timedelta(hours=7))) is None, garbage


def test_garbage_lines_are_skipped_and_counted() -> None:
    good = ANSWERED_CALL.splitlines()[0]
    lines = [
        good,
        "",
        "garbage",
        good.replace('"CHAN_START",', ""),  # a column short
        good + ',"one too many"',
        good.replace("2026-11-28 21:16:36", "not a time"),
        good.replace('"1795900596.2","1795900596.2"', '"",""'),  # no ids
        good[:40],  # torn: an unterminated quote
        good.replace("PJSIP", "PJ\x00SIP"),  # a crash can leave a run of NULs
        '"CHAN_START","2026-11-28 21:16:36","1.1","1.1",' + ",".join(['"x"'] * 7) + ",{bad",
    ]
    parsed = parse_lines(lines, UTC)
    assert parsed.skipped == 7
    assert [r.uniqueid for r in parsed.records] == [CALLER, "1.1"]
    assert parsed.records[1].extra == {}


ANY_TEXT = st.text(st.characters(exclude_categories=()))
TIMES = st.one_of(ANY_TEXT, st.from_regex(r"[0-9]{1,25}(\.[0-9]{0,9})?", fullmatch=True))


@given(st.lists(ANY_TEXT, max_size=20))
def test_no_input_makes_the_parser_raise(lines: list[str]) -> None:
    parsed = parse_lines(lines)
    assert len(parsed.records) + parsed.skipped <= len(lines)


@given(st.tuples(ANY_TEXT, TIMES, *[ANY_TEXT] * 10))
def test_no_row_of_twelve_fields_makes_the_parser_raise(values: tuple[str, ...]) -> None:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL).writerow(values)
    record = parse_line(out.getvalue())
    assert record is None or record.time.tzinfo is UTC


def test_rows_group_into_calls_and_legs_in_file_order() -> None:
    unfinished = '"CHAN_START","2026-11-28 21:17:00","1795900620.4","1795900620.4",' + ",".join(
        ['""'] * 8
    )
    records = parse_lines([*ANSWERED_CALL.splitlines(), unfinished], UTC).records
    answered, in_progress = group_calls(records)
    assert answered.linkedid == CALLER and [leg.uniqueid for leg in answered.legs] == [
        CALLER,
        OPERATOR,
    ]
    assert answered.started_at == datetime(2026, 11, 28, 21, 16, 36, tzinfo=UTC)
    assert answered.ended_at == datetime(2026, 11, 28, 21, 16, 50, tzinfo=UTC)
    assert [r.event_type for r in answered.records][-1] == "LINKEDID_END"
    assert in_progress.ended_at is None


def test_rows_with_an_ami_counterpart_become_frames() -> None:
    call = answered_call()
    frames = [to_frame(record, 7) for record in call.records]
    names = [f.event if f is not None else None for f in frames]
    assert names == [
        "Newchannel", "Newstate", None, "Newchannel", "Newstate", "BridgeEnter", "BridgeEnter",
        "BridgeLeave", "Hangup", None, "Hangup", None, None,
    ]  # fmt: skip
    start, answer, hangup = frames[0], frames[1], frames[8]
    assert start is not None and answer is not None and hangup is not None
    assert start["Uniqueid"] == CALLER and start["Linkedid"] == CALLER
    assert start["CallerIDNum"] == "+6281234567890" and start["CELEventType"] == "CHAN_START"
    assert event_time(start) == call.records[0].time and start.received_ns == 7
    assert answer["ChannelState"] == "6"
    assert hangup["Cause"] == "16" and '"dialstatus":"ANSWER"' in hangup["CELExtra"]
    bridge = frames[6]
    assert bridge is not None and bridge["BridgeUniqueid"] == "2d2a5f1a"
    assert bridge["CELBridgePeer"] == "PJSIP/op-test-00000003"


def test_call_facts_read_queueing_answer_and_cause_off_the_caller() -> None:
    call = answered_call()
    facts = call_facts(call)
    assert facts.queued_at == datetime(2026, 11, 28, 21, 16, 37, tzinfo=UTC)
    assert facts.queue == "prov-35"
    assert facts.answered_at == datetime(2026, 11, 28, 21, 16, 39, tzinfo=UTC)
    assert facts.answered_by == "PJSIP/op-test" and facts.hangup_cause == 16
    assert [dialled(leg) for leg in call.legs] == [False, True]


def test_an_answer_is_found_whichever_side_entered_the_bridge_last() -> None:
    lines = ANSWERED_CALL.splitlines()
    # The caller was alone in the bridge first; the operator's row names the caller as peer.
    lines[5] = lines[5].replace('"","{""bridge_id', '"PJSIP/trunk-mno-00000002","{""bridge_id')
    lines[6] = lines[6].replace('"PJSIP/op-test-00000003","{""bridge_id', '"","{""bridge_id')
    lines[5], lines[6] = lines[6], lines[5]
    [call] = group_calls(parse_lines(lines, UTC).records)
    facts = call_facts(call)
    assert facts.answered_at == datetime(2026, 11, 28, 21, 16, 39, tzinfo=UTC)
    assert facts.answered_by == "PJSIP/op-test"


def test_an_unanswered_call_has_no_answer_fact() -> None:
    lines = [line for line in ANSWERED_CALL.splitlines() if "BRIDGE" not in line]
    [call] = group_calls(parse_lines(lines, UTC).records)
    facts = call_facts(call)
    assert facts.answered_at is None and facts.answered_by is None
    assert facts.queued_at is not None
