from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest

from telephony.ami import Frame, ListResult, NotConnected
from telephony.audit import WriterMetrics
from telephony.health import HealthServer, Monitor

S = 1_000_000_000  # ns


def ev(name: str, at_s: float = 0.0, **fields: str) -> Frame:
    return Frame([("Event", name), *fields.items()], received_ns=int(at_s * S) or 1)


def listing(*events: Frame, at_s: float) -> ListResult:
    complete = Frame([("EventList", "Complete")], received_ns=int(at_s * S))
    return ListResult(Frame([("Response", "Success")]), list(events), complete)


@dataclass
class FakeAMI:
    connected: bool = True
    lists: dict[str, ListResult] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    # The session drops while a list is in flight.
    lost: bool = False

    def send_list_action(self, name: str, *, timeout: float = 10.0) -> ListResult:
        self.asked.append(name)
        if self.lost or not self.connected:
            raise NotConnected("gone")
        return self.lists[name]


@dataclass
class FakeAGI:
    listening: bool = True
    active_sessions: int = 0

    @property
    def address(self) -> tuple[str, int]:
        if not self.listening:
            raise RuntimeError("FastAGIServer is not started")
        return ("127.0.0.1", 4573)


@dataclass
class FakeWriter:
    state: WriterMetrics = field(
        default_factory=lambda: WriterMetrics(
            events_written=0, duplicates_skipped=0, events_spooled=0, spool_backlog=0,
            db_available=True, last_seq=0, lag_ms=(),
        )
    )

    def metrics(self) -> WriterMetrics:
        return self.state


def test_calls_in_progress_count_linkedids_not_channels() -> None:
    monitor = Monitor()
    monitor.observe(ev("Newchannel", 1, Uniqueid="a.1", Linkedid="a.1"))
    monitor.observe(ev("Newchannel", 2, Uniqueid="a.2", Linkedid="a.1"))
    monitor.observe(ev("Newchannel", 3, Uniqueid="b.1", Linkedid="b.1"))
    assert monitor.snapshot().calls == 2
    monitor.observe(ev("Hangup", 4, Uniqueid="a.2", Linkedid="a.1"))
    assert monitor.snapshot().calls == 2
    monitor.observe(ev("Hangup", 5, Uniqueid="a.1", Linkedid="a.1"))
    monitor.observe(ev("Hangup", 5, Uniqueid="a.1", Linkedid="a.1"))
    assert monitor.snapshot().calls == 1


def test_a_caller_who_abandons_leaves_the_queue_once() -> None:
    monitor = Monitor()
    monitor.observe(ev("QueueCallerJoin", 10, Queue="prov-35", Uniqueid="a.1"))
    monitor.observe(ev("QueueCallerJoin", 16, Queue="prov-35", Uniqueid="b.1"))
    state = monitor.snapshot(now_ns=30 * S).queues["prov-35"]
    assert (state.callers, state.longest_wait_s) == (2, 20.0)
    # Asterisk sends both on abandon: the second must not count the caller out again.
    monitor.observe(ev("QueueCallerAbandon", 31, Queue="prov-35", Uniqueid="a.1"))
    monitor.observe(ev("QueueCallerLeave", 31, Queue="prov-35", Uniqueid="a.1"))
    state = monitor.snapshot(now_ns=40 * S).queues["prov-35"]
    assert (state.callers, state.longest_wait_s) == (1, 24.0)
    monitor.observe(ev("QueueCallerLeave", 41, Queue="prov-35", Uniqueid="b.1"))
    assert monitor.snapshot().queues["prov-35"].callers == 0


def test_operators_available_and_paused_per_queue() -> None:
    monitor = Monitor()
    for who in ("PJSIP/op1", "PJSIP/op2"):
        monitor.observe(ev("QueueMemberAdded", Queue="reg-3578", Interface=who, Paused="0"))
    monitor.observe(ev("QueueMemberPause", Queue="reg-3578", Interface="PJSIP/op2", Paused="1"))
    state = monitor.snapshot().queues["reg-3578"]
    assert (state.available, state.paused) == (1, 1)
    monitor.observe(ev("QueueMemberRemoved", Queue="reg-3578", Interface="PJSIP/op1"))
    state = monitor.snapshot().queues["reg-3578"]
    assert (state.available, state.paused) == (0, 1)


def test_answer_time_runs_from_the_callers_channel_to_the_first_agent_connect() -> None:
    monitor = Monitor()
    monitor.observe(ev("Newchannel", 100, Uniqueid="a.1", Linkedid="a.1"))
    monitor.observe(ev("Newchannel", 105, Uniqueid="a.2", Linkedid="a.1"))  # the operator leg
    monitor.observe(ev("AgentConnect", 107.5, Linkedid="a.1", Queue="prov-35"))
    monitor.observe(ev("AgentConnect", 130, Linkedid="a.1", Queue="prov-35"))  # transferred on
    get = monitor.registry.get_sample_value
    assert get("telephony_answer_seconds_count") == 1
    assert get("telephony_answer_seconds_sum") == pytest.approx(7.5)
    assert get("telephony_answer_seconds_bucket", {"le": "5.0"}) == 0
    assert get("telephony_answer_seconds_bucket", {"le": "10.0"}) == 1


def test_agi_timings_feed_a_cumulative_histogram_and_the_sample_window() -> None:
    monitor = Monitor()
    monitor.agi_timings.record("get full variable", 0.002)
    monitor.agi_timings.record("GET FULL VARIABLE", 0.2)
    labels = {"command": "GET FULL VARIABLE"}
    get = monitor.registry.get_sample_value
    assert get("telephony_agi_command_seconds_count", labels) == 2
    assert get("telephony_agi_command_seconds_bucket", {**labels, "le": "0.0025"}) == 1
    stats = monitor.agi_timings.stats("GET FULL VARIABLE")
    assert stats is not None and stats.count == 2


def test_resync_replaces_the_gauges_and_replays_only_later_events() -> None:
    monitor = Monitor()
    # Before the outage: a call whose hangup (and queue leave) AMI never delivered.
    monitor.observe(ev("Newchannel", 1, Uniqueid="gone.1", Linkedid="gone.1"))
    monitor.observe(ev("QueueCallerJoin", 2, Queue="prov-35", Uniqueid="gone.1"))
    monitor.observe(ev("FullyBooted"))
    assert monitor.stale
    generation = monitor.begin_resync()
    monitor.observe(ev("Newchannel", 50, Uniqueid="c.1", Linkedid="c.1"))  # in the list too
    monitor.observe(ev("Hangup", 61, Uniqueid="c.1", Linkedid="c.1"))  # after the list
    monitor.observe(ev("QueueCallerLeave", 62, Queue="reg-3578", Uniqueid="d.1"))
    channels = listing(
        ev("CoreShowChannel", Uniqueid="c.1", Linkedid="c.1"),
        ev("CoreShowChannel", Uniqueid="d.1", Linkedid="d.1"),
        at_s=60,
    )
    queues = listing(
        ev("QueueParams", Queue="prov-35"),
        ev("QueueParams", Queue="reg-3578"),
        ev("QueueMember", Queue="reg-3578", Location="PJSIP/op1", Paused="1"),
        ev("QueueEntry", Queue="reg-3578", Uniqueid="d.1", Wait="12"),
        ev("QueueEntry", Queue="reg-3578", Uniqueid="e.1", Wait="3"),
        at_s=60,
    )
    monitor.finish_resync(generation, channels, queues)
    snap = monitor.snapshot(now_ns=70 * S)
    assert not monitor.stale
    assert snap.calls == 1  # d.1: gone.1 never came back, c.1 hung up after the list
    assert snap.queues["prov-35"].callers == 0
    reg = snap.queues["reg-3578"]
    assert (reg.callers, reg.longest_wait_s, reg.paused) == (1, 13.0, 1)


def test_a_new_session_during_a_resync_keeps_the_monitor_stale() -> None:
    monitor = Monitor()
    monitor.observe(ev("FullyBooted"))
    generation = monitor.begin_resync()
    monitor.observe(ev("FullyBooted"))
    monitor.finish_resync(generation, listing(at_s=1), listing(at_s=1))
    assert monitor.stale


@pytest.fixture
def probes() -> tuple[FakeAMI, FakeAGI, FakeWriter]:
    return FakeAMI(), FakeAGI(), FakeWriter()


@pytest.fixture
def server(
    probes: tuple[FakeAMI, FakeAGI, FakeWriter],
) -> Iterator[tuple[HealthServer, Monitor]]:
    ami, agi, writer = probes
    monitor = Monitor()
    health = HealthServer("127.0.0.1", 0, monitor=monitor, ami=ami, agi=agi, writer=writer)
    health.start()
    try:
        yield health, monitor
    finally:
        health.stop()


def get(health: HealthServer, path: str) -> tuple[int, str]:
    host, port = health.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_healthz_is_200_when_every_check_passes(
    server: tuple[HealthServer, Monitor],
) -> None:
    status, body = get(server[0], "/healthz")
    assert status == 200
    report = json.loads(body)
    assert report["status"] == "ok"
    assert report["checks"]["agi"] == {
        "ok": True, "address": "127.0.0.1:4573", "active_sessions": 0
    }


def break_one(check: str, ami: FakeAMI, agi: FakeAGI, writer: FakeWriter) -> None:
    if check == "ami":
        ami.connected = False
    elif check == "agi":
        agi.listening = False
    elif check == "database":
        writer.state = replace(writer.state, db_available=False)
    elif check == "writer":
        writer.state = replace(writer.state, alive=False)
    elif check == "writer-lag":
        writer.state = replace(writer.state, stalled_s=31.0)
    else:
        writer.state = replace(writer.state, spool_backlog=7)


@pytest.mark.parametrize("check", ["ami", "agi", "database", "spool", "writer", "writer-lag"])
def test_healthz_is_503_naming_the_failed_check(
    server: tuple[HealthServer, Monitor], probes: tuple[FakeAMI, FakeAGI, FakeWriter], check: str
) -> None:
    break_one(check, *probes)
    status, body = get(server[0], "/healthz")
    assert status == 503
    report = json.loads(body)
    assert report["status"] == "degraded"
    assert [name for name, c in report["checks"].items() if not c["ok"]] == [
        check.removesuffix("-lag")
    ]


def test_healthz_answers_within_a_second_with_300_idle_connections_open(
    server: tuple[HealthServer, Monitor],
) -> None:
    host, port = server[0].address
    idle: list[socket.socket] = []
    started = time.monotonic()
    try:
        for _ in range(300):
            # Connected and silent, like a stuck or hostile client; none may hold a probe up.
            idle.append(socket.create_connection((host, port), timeout=5))
        assert time.monotonic() - started < 5, "the server stopped accepting connections"
        for _ in range(3):
            asked = time.monotonic()
            status, _body = get(server[0], "/healthz")
            assert status == 200 and time.monotonic() - asked < 1.0
    finally:
        for sock in idle:
            sock.close()


def test_an_idle_connection_is_closed_after_the_request_timeout(probes: tuple[
    FakeAMI, FakeAGI, FakeWriter
]) -> None:
    ami, agi, writer = probes
    health = HealthServer("127.0.0.1", 0, monitor=Monitor(), ami=ami, agi=agi, writer=writer,
                          request_timeout_s=0.3)  # fmt: skip
    health.start()
    try:
        with socket.create_connection(health.address, timeout=5) as sock:
            asked = time.monotonic()
            assert sock.recv(1) == b""
            assert time.monotonic() - asked < 3
    finally:
        health.stop()


def test_metrics_expose_gauges_counters_and_histograms(
    server: tuple[HealthServer, Monitor], probes: tuple[FakeAMI, FakeAGI, FakeWriter]
) -> None:
    health, monitor = server
    ami, agi, writer = probes
    writer.state = replace(
        writer.state, events_written=42, spool_backlog=3, db_available=False, lag_ms=(5.0, 250.0),
        idle=False,
    )
    agi.active_sessions = 2
    monitor.observe(ev("Newchannel", 1, Uniqueid="a.1", Linkedid="a.1"))
    monitor.observe(ev("QueueCallerJoin", 2, Queue="prov-35", Uniqueid="a.1"))
    monitor.observe(ev("FullyBooted"))
    monitor.observe(ev("FullyBooted"))
    ami.connected = False  # no resync: the gauges stay as observed
    status, text = get(health, "/metrics")
    assert status == 200
    lines = set(text.splitlines())
    for line in (
        "telephony_calls_in_progress 1.0",
        'telephony_queue_callers{queue="prov-35"} 1.0',
        "telephony_ami_connected 0.0",
        "telephony_ami_reconnects_total 1.0",
        "telephony_agi_sessions 2.0",
        "telephony_audit_events_written_total 42.0",
        "telephony_audit_spool_backlog 3.0",
        "telephony_audit_database_up 0.0",
        "telephony_audit_lag_seconds 0.25",
        "telephony_answer_seconds_count 0.0",
    ):
        assert line in lines, line
    assert ami.asked == []


def test_a_scrape_after_a_new_session_resyncs_once(
    server: tuple[HealthServer, Monitor], probes: tuple[FakeAMI, FakeAGI, FakeWriter]
) -> None:
    health, monitor = server
    ami = probes[0]
    ami.lists = {
        "CoreShowChannels": listing(at_s=1),
        "QueueStatus": listing(
            ev("QueueParams", Queue="prov-35"),
            ev("QueueMember", Queue="prov-35", Location="PJSIP/op1", Paused="0"),
            at_s=1,
        ),
    }
    monitor.observe(ev("FullyBooted"))
    _, text = get(health, "/metrics")
    assert 'telephony_queue_operators{queue="prov-35",state="available"} 1.0' in text
    get(health, "/metrics")
    assert ami.asked == ["CoreShowChannels", "QueueStatus"]


def test_a_failed_resync_is_retried_at_the_next_scrape(
    server: tuple[HealthServer, Monitor], probes: tuple[FakeAMI, FakeAGI, FakeWriter]
) -> None:
    health, monitor = server
    ami = probes[0]
    ami.lists = {"CoreShowChannels": listing(at_s=1), "QueueStatus": listing(at_s=1)}
    monitor.observe(ev("FullyBooted"))
    ami.lost = True
    assert get(health, "/metrics")[0] == 200
    assert monitor.stale
    ami.lost = False
    get(health, "/metrics")
    assert not monitor.stale
    assert ami.asked == ["CoreShowChannels", "CoreShowChannels", "QueueStatus"]


def test_unknown_paths_are_404(server: tuple[HealthServer, Monitor]) -> None:
    assert get(server[0], "/")[0] == 404
