"""A regency's calls reach its home node, and with the home node down, its backup
(issue 18), through the real edge: Kamailio's dispatcher, its OPTIONS probes, and serve's
answer to the edge's regency question."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from telephony.cluster.nodes import node_uri
from tests.harness.perf.centre import CELL
from tests.harness.sipp import run_scenario
from tests.integration.cluster.conftest import REGENCY, Nodes

pytestmark = pytest.mark.asterisk

PANI = f"3GPP-E-UTRAN-FDD; utran-cell-id-3gpp={CELL}; network-provided"
PAI = "<sip:081234567890@mno.example;user=phone>"


def call(nodes: Nodes, pani: str, tag: str, hold_ms: int = 500) -> float:
    """One caller from the trunk, answered by the IVR, who hangs up after half a second: the
    ACK and the BYE (no Route set, as SIPp sends them) reach the node holding the call.
    Returns the call's length, setup included."""
    started = time.monotonic()
    result = run_scenario(
        "uac_112_pani.xml", nodes.target, workdir=nodes.workdir, timeout_s=20,
        extra=("-d", str(hold_ms), "-cid_str", f"{tag}-%u-%p@%s", "-key", "pai", PAI,
               "-key", "pani", pani),
    )  # fmt: skip
    assert result.ok, f"{tag}: {result.output}\n{result.errors}"
    return time.monotonic() - started


def reached(nodes: Nodes, before: dict[str, int]) -> list[str]:
    """The nodes (of those in `before`, which are running) that received an INVITE since."""
    return [name for name, count in before.items() if nodes.invites(name) > count]


def counts(nodes: Nodes, *names: str) -> dict[str, int]:
    return {name: nodes.invites(name) for name in names}


def test_a_regency_reaches_its_home_node_then_its_backup(nodes: Nodes) -> None:
    # No cell: the edge cannot tell the regency, and the set of every node starts with b.
    before = counts(nodes, "a", "b")
    call(nodes, "3GPP-E-UTRAN-FDD", "unknown")
    assert reached(nodes, before) == ["b"]

    # Kota Malang's cell: its home node a, although b comes first in the file.
    before = counts(nodes, "a", "b")
    call(nodes, PANI, "home")
    assert reached(nodes, before) == ["a"]
    assert nodes.wait_no_channels("a") == 0

    # Each answered call's ACK reached the node, once: the 200 was not retransmitted.
    assert nodes.received("a", "ACK") == nodes.received("a", "INVITE")

    # Node a goes away. A call placed at once, while the dispatcher still holds a up, goes
    # to a, gets no answer, and goes on to b (failure_route): answered all the same.
    nodes.asterisks["a"].stop()
    still_up = all(f.startswith("A") for f in nodes.flags("a"))
    before = counts(nodes, "b")
    took = call(nodes, PANI, "failover")
    assert reached(nodes, before) == ["b"]
    if still_up:
        assert "edge.node_failed call_id=failover-" in nodes.edge_log()
    print(
        f"a call placed as node a stopped (a still up at the edge: {still_up}): "
        f"{took:.2f} s, hold 0.5 s included"
    )

    # With a out of its sets, Kota Malang's next call goes straight to its backup.
    nodes.wait_flags("a", "I")
    before = counts(nodes, "b")
    took = call(nodes, PANI, "backup")
    assert reached(nodes, before) == ["b"]
    assert nodes.wait_no_channels("b") == 0
    assert nodes.received("b", "ACK") == nodes.received("b", "INVITE") == 3
    assert nodes.received("b", "BYE") == 3
    print(f"a call with node a out of its sets: {took:.2f} s, hold 0.5 s included")

    # Node a comes back: once its probes pass, Kota Malang's calls go home again.
    nodes.start("a")
    back = nodes.wait_flags("a", "A")
    before = counts(nodes, "a", "b")
    call(nodes, PANI, "home-again")
    assert reached(nodes, before) == ["a"]

    # Nothing but the probes: how long a dead node keeps its place in its sets.
    stopped = time.monotonic()
    nodes.asterisks["a"].stop()
    exited = time.monotonic() - stopped
    window = nodes.wait_flags("a", "I") + exited
    print(
        f"node a: back in its sets {back:.2f} s after it booted; stopped in {exited:.2f} s, "
        f"out of its sets {window:.2f} s after the stop (probes only)"
    )
    assert window < 5.0


def test_a_draining_node_finishes_its_calls_and_sends_new_ones_on(nodes: Nodes) -> None:
    """A graceful stop (`core stop gracefully`): Asterisk answers 503 to the probes and to new
    calls, which go to the backup, while the call it holds goes on to its end."""
    if nodes.asterisks["a"].pid() is None:
        nodes.start("a")
    nodes.wait_flags("a", "A")
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(call, nodes, PANI, "held", 8000)
        deadline = time.monotonic() + 10
        while nodes.asterisks["a"].channel_count() == 0:
            assert time.monotonic() < deadline, "the held call never reached node a"
            time.sleep(0.05)  # the channel appears with no event to this test: poll
        stopping = pool.submit(nodes.asterisks["a"].stop, 30.0)
        # The probes' 503 takes the draining node out of its sets.
        drained = nodes.wait_flags("a", "I")
        # Put it back by hand: a new call now meets the node's own 503 and goes on to b.
        uri = node_uri(nodes.cluster.node("a"))
        nodes.edge.rpc.call("dispatcher.set_state", "ap", nodes.cluster.set_id(REGENCY), uri)
        before = counts(nodes, "b")
        call(nodes, PANI, "drained")
        assert reached(nodes, before) == ["b"]
        assert "edge.node_failed call_id=drained-" in nodes.edge_log()
        assert "status=503" in nodes.edge_log().split("call_id=drained-")[1].splitlines()[0]
        held.result(timeout=30)
        stopping.result(timeout=30)
    print(f"draining node a out of its sets {drained:.2f} s after `core stop gracefully`")
