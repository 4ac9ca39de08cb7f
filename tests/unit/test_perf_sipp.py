"""SIPp scenario rendering, audio, and the parsers of its output files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.harness import sipp
from tests.harness.perf.load import IDENTITY, SDP, SDP_TYPE

# A -trace_stat file cut down to the columns the parser reads, as SIPp writes them
# (header row, one row per -fd period, trailing ';').
STATS = (
    "StartTime;CurrentTime;OutgoingCall(C);IncomingCall(C);CurrentCall;SuccessfulCall(C);"
    "FailedCall(C);FailedMaxUDPRetrans(C);FailedUnexpectedMessage(C);Retransmissions(C);\n"
    "2026-11-28\t21:51:15.1;2026-11-28\t21:51:15.1;0;0;0;0;0;0;0;0;\n"
    "2026-11-28\t21:51:16.1;2026-11-28\t21:51:16.1;4;0;4;0;0;0;0;1;\n"
    "2026-11-28\t21:51:17.1;2026-11-28\t21:51:17.1;6;0;2;4;2;1;1;3;\n"
)


def test_stats_take_the_last_row_and_the_peak_of_current_calls() -> None:
    counts = sipp.parse_stats(STATS)

    assert counts is not None
    assert (counts.created, counts.successful, counts.failed) == (6, 4, 2)
    assert (counts.current, counts.peak_current, counts.retransmissions) == (2, 4, 3)
    assert counts.failures == {"FailedMaxUDPRetrans": 1, "FailedUnexpectedMessage": 1}
    assert sipp.parse_stats(STATS.splitlines()[0]) is None


def test_rtt_file_gives_milliseconds() -> None:
    text = "Date_ms;response_time_ms;rtd_no\n512.001;8;setup\n1008;4;setup\nbroken\n"
    assert sipp.parse_rtt(text) == [8.0, 4.0]


def test_marks_combine_seconds_and_microseconds_and_skip_other_lines() -> None:
    lines = [
        "invite;+628120100001;1795902675.000000;616476.000000",
        "The following events occurred:",
        "ring;+628120100001;1795902686.000000;174311.000000",
        "key;x;not-a-number;1",
    ]
    marks = sipp.parse_marks(lines)

    assert [(m.kind, m.number) for m in marks] == [
        ("invite", "+628120100001"), ("ring", "+628120100001"),
    ]
    assert marks[1].at - marks[0].at == pytest.approx(10.557835, abs=1e-6)


def test_render_fills_placeholders_and_refuses_missing_ones(tmp_path: Path) -> None:
    path = sipp.render("operator.xml", tmp_path, answer_ms=750)
    assert 'timeout="750"' in path.read_text()
    assert "@{" not in path.read_text()
    with pytest.raises(sipp.SippError, match="answer_ms"):
        sipp.render("operator.xml", tmp_path)


@pytest.mark.parametrize("name", ["caller.xml", "operator.xml", "register.xml", "flood.xml"])
def test_every_scenario_renders_to_well_formed_xml(name: str, tmp_path: Path) -> None:
    values = {"answer_ms": 1, "dtmf_pcap": sipp.DTMF_PCAP, "audio": "", "headers": IDENTITY,
              "content_type": SDP_TYPE, "body": SDP, "user": "[field0]", "service": "[service]"}
    text = sipp.render(name, tmp_path, **values).read_text()
    ET.fromstring(text.split("\n", 2)[2])  # past the XML declaration and the DOCTYPE


def test_ulaw_matches_g711_reference_points() -> None:
    # Silence, both rails, and values either side of a segment boundary (ITU-T G.711).
    assert [sipp.ulaw(s) for s in (0, 32767, -32768, 100, -100, 1000, -1000)] == [
        0xFF, 0x80, 0x00, 0xF2, 0x72, 0xCE, 0x4E,
    ]


def test_audio_is_raw_8khz_ulaw(tmp_path: Path) -> None:
    path = sipp.write_audio(tmp_path / "tone.ulaw", seconds=0.5)
    data = path.read_bytes()
    assert len(data) == 4000
    assert len(set(data)) > 10  # a tone, not silence
