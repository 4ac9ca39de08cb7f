"""Location by value behind the edge, with location.pidf_lo = true on the Asterisk behind it:
a well-formed PIDF-LO reaches Asterisk and routes by its point; one without <usage-rules>
(which crashes Asterisk 22.10.1 with this setting) is stripped, and the call goes on."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from telephony.control import Watcher, watching
from telephony.edge.stats import GAUGES
from tests.harness.service import ServeProcess
from tests.harness.sipp import SippResult, run_scenario
from tests.integration.edge.conftest import Edge, history

pytestmark = pytest.mark.asterisk

SURABAYA = ("-7.2575", "112.7521")
RULES = "<gp:usage-rules/>"
NO_RULES = "<!-- no usage-rules -->"


@pytest.fixture
def served(quiet_edge: Edge, tmp_path: Path) -> Iterator[tuple[Edge, Watcher]]:
    """`telephony serve` in edge mode: the IVR, and the validator Kamailio asks."""
    proc = ServeProcess(quiet_edge.box.config, tmp_path / "serve.log")
    try:
        proc.wait_ready()
        quiet_edge.forget_validator_failure()
        with watching(quiet_edge.box.config) as ami:
            yield quiet_edge, ami
    finally:
        proc.stop()


def pidf_call(edge: Edge, number: str, rules: str, tag: str, hold_ms: int = 12000) -> SippResult:
    return run_scenario(
        "uac_112_pidf.xml", edge.target, workdir=edge.box.workdir, timeout_s=40,
        extra=("-d", str(hold_ms), "-cid_str", f"{tag}-%u-%p@%s",
               "-key", "pai", f"<sip:{number}@mno.example>", "-key", "lat", SURABAYA[0],
               "-key", "lon", SURABAYA[1], "-key", "rules", rules),
    )  # fmt: skip


def received_invite(edge: Edge, tag: str) -> str:
    """The INVITE of call `tag` as Asterisk received it (its pjsip history)."""
    for number, _, line in reversed(history(edge)):
        if line.startswith("INVITE "):
            entry = edge.box.asterisk.cli(f"pjsip show history entry {number}")
            if f"Call-ID: {tag}-" in entry:
                return entry
    raise AssertionError(f"Asterisk received no INVITE for {tag}")


def located(ami: Watcher, number: str) -> dict[str, str]:
    join = ami.wait_for("QueueCallerJoin", lambda f: f.get("CallerIDNum") == number, timeout=30)
    linkedid = join.frame.get("Linkedid")
    event = ami.wait_for("UserEvent", lambda f: f.get("UserEvent") == "IVRLocation"
                         and f.get("Linkedid") == linkedid, timeout=5)
    return {"JoinedQueue": join.frame.get("Queue") or "", **dict(event.frame.fields)}


def test_a_well_formed_pidf_lo_reaches_asterisk_and_routes_by_its_point(
    served: tuple[Edge, Watcher],
) -> None:
    edge, ami = served
    kept = edge.stats().counter("pidf_kept")
    result = pidf_call(edge, "081230000021", RULES, "kept")
    facts = located(ami, "081230000021")
    assert result.ok, result.output + result.errors
    assert facts["JoinedQueue"] == "reg-3578" and facts["RegencyCode"] == "35.78"
    assert facts["Source"] in ("pidf-lo", "geoloc-profile")
    assert edge.stats().counter("pidf_kept") == kept + 1
    invite = received_invite(edge, "kept")
    assert "Geolocation: <cid:" in invite and "application/pidf+xml" in invite
    assert "<gp:usage-rules/>" in invite and "<gml:pos>-7.2575 112.7521</gml:pos>" in invite
    health = edge.box.config.health
    with urllib.request.urlopen(f"http://{health.bind}:{health.port}/metrics", timeout=5) as page:
        metrics = page.read().decode()
    assert "telephony_edge_up 1.0" in metrics
    assert f"telephony_edge_pidf_kept_total {kept + 1}.0" in metrics
    # Every gauge is one Kamailio really has (a missing one would read 0 forever).
    assert all(f"{group}.{name}" in edge.stats().values for group, name, _ in GAUGES)


def test_a_pidf_lo_without_usage_rules_is_stripped_and_the_call_is_queued(
    served: tuple[Edge, Watcher],
) -> None:
    edge, ami = served
    stripped = edge.stats().counter("pidf_stripped")
    result = pidf_call(edge, "081230000022", NO_RULES, "norules")
    facts = located(ami, "081230000022")
    assert result.ok, result.output + result.errors
    assert facts["JoinedQueue"] == "prov-35" and facts["Source"] == ""
    assert edge.stats().counter("pidf_stripped") == stripped + 1
    invite = received_invite(edge, "norules")
    assert "Geolocation:" not in invite and "pidf" not in invite and "application/sdp" in invite
    lines = [line for line in edge.kamailio.layout.log.read_text().splitlines()
             if "edge.pidf_stripped call_id=norules-" in line]
    assert len(lines) == 1 and "verdict=strip no-usage-rules" in lines[0], lines
    assert edge.box.wait_no_channels() == 0  # and Asterisk still answers its CLI
    assert edge.box.asterisk.pid() is not None


def test_without_the_validator_every_pidf_lo_is_stripped_and_the_call_goes_on(
    quiet_edge: Edge,
) -> None:
    """Nobody answers Kamailio's question (telephony serve is down): even a well-formed
    PIDF-LO is stripped, because an unchecked one could stop Asterisk."""
    stripped = quiet_edge.stats().counter("pidf_stripped")
    with watching(quiet_edge.box.config) as ami:
        result = pidf_call(quiet_edge, "081230000023", RULES, "unchecked", hold_ms=1000)
        ami.wait_for("QueueCallerJoin", lambda f: f.get("CallerIDNum") == "081230000023")
    assert result.ok, result.output + result.errors
    assert quiet_edge.stats().counter("pidf_stripped") == stripped + 1


def test_a_stalled_validator_holds_one_question_and_is_then_skipped_for_a_while(
    quiet_edge: Edge,
) -> None:
    """telephony serve stalled (it accepts, never answers): the first question waits for
    the 1 s timeout, the next calls are stripped at once instead of each waiting too."""
    port = quiet_edge.box.config.edge.validator_port
    quiet_edge.forget_validator_failure()
    with socket.socket() as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        stalled.bind(("127.0.0.1", port))
        stalled.listen(16)  # connections complete in the backlog; nothing reads them
        results = [pidf_call(quiet_edge, f"08123000004{n}", RULES, f"stalled{n}", hold_ms=500)
                   for n in range(3)]
    assert all(r.ok for r in results), [r.output + r.errors for r in results]
    lines = [line for line in quiet_edge.kamailio.layout.log.read_text().splitlines()
             if "edge.pidf_stripped call_id=stalled" in line]
    assert len(lines) == 3, lines
    assert "status=0 " not in lines[0] and "status=200 " not in lines[0], lines
    assert all("status=0 verdict=unchecked" in line for line in lines[1:]), lines
