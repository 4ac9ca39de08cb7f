"""Audit ingest flood, and the probe's reading of the writer's lag samples."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from telephony.audit import WriterMetrics
from telephony.audit.events import event_linkedid
from tests.harness.perf.ingest import EVENTS_PER_CALL, call_frames, flood
from tests.harness.perf.probe import LagReader


def test_a_call_is_a_dozen_events_all_on_its_linkedid() -> None:
    frames = call_frames(7, 1_800_000_000)

    assert len(frames) == EVENTS_PER_CALL
    assert {event_linkedid(f) for f in frames} == {"1800000000.14"}
    events = [f.event for f in frames]
    assert events[0] == "Newchannel" and events[-2:] == ["Hangup", "Hangup"]


def test_sqlite_flood_loses_nothing_and_the_chain_verifies(tmp_path: Path) -> None:
    found = flood(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "work", 20, timeout_s=60)

    assert (found.events, found.written, found.rows, found.lost) == (240, 240, 240, 0)
    assert found.verified and found.spooled == 0
    assert found.as_dict()["events_per_s"] > 0


@dataclass
class FakeWriter:
    metrics_now: WriterMetrics

    def metrics(self) -> WriterMetrics:
        return self.metrics_now


def metrics(written: int, lag: tuple[float, ...]) -> WriterMetrics:
    return WriterMetrics(written, 0, 0, 0, True, written, lag)


def test_lag_reader_takes_only_new_samples_and_counts_what_fell_off() -> None:
    writer = FakeWriter(metrics(5, (1.0, 2.0)))
    reader = LagReader(writer)

    def step(written: int, lag: tuple[float, ...]) -> None:
        writer.metrics_now = replace(writer.metrics_now, events_written=written, lag_ms=lag)
        reader.read()

    step(7, (1.0, 2.0, 3.0, 4.0))
    step(7, (1.0, 2.0, 3.0, 4.0))  # nothing new
    step(12, (5.0, 6.0, 7.0))  # five new, the writer kept only three

    assert reader.samples == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert reader.missed == 2
