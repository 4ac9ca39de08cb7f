"""No operator is rung by two nodes at once (issue 18): every node reaches an operator
through the edge, whose dialog profile lets one call at a time reach them, ringing or
talking, and answers any other node at once with 486 (kamailio.cfg route[OPERATOR_FREE]).

One pjsua2 softphone registered at the edge's registrar plays the operator; each node rings
it with an AMI Originate to PJSIP/<op>, as app_queue and `callbacks take` do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from telephony.ami import ActionFailed, AMIConnection
from telephony.cluster.nodes import node_config
from telephony.control import ami_connection
from telephony.edge.dispatch import OPERATOR_BUSY_REASON, OPERATOR_PROFILE
from telephony.phone import IncomingCall, Phone
from tests.harness.sandbox import wait_contact
from tests.harness.service import run_cli
from tests.integration.cluster.conftest import ADDRESSES, Nodes
from tests.integration.cluster.test_routing import call

pytestmark = pytest.mark.asterisk

# An operator of the shipped demo roster (config/operators.toml), which the cluster uses.
OP, PASSWORD = "op3573", "demo-3573"
BUSY = f"SIP/2.0 486 {OPERATOR_BUSY_REASON}"
# A node qualifies each operator through the edge every 5 s (EDGE_QUALIFY_S).
QUALIFY_WAIT_S = 12.0
# The end of a call frees its operator at once (measured: a few ms), not when the dialog
# module frees the dialog, tm's wait timer (5 s) later.
RELEASE_BUDGET_S = 1.0


def operator_calls(nodes: Nodes) -> int:
    """The calls the edge counts for OP (its dialog profile), from every node."""
    return int(nodes.edge.rpc.call("dlg.profile_get_size", OPERATOR_PROFILE, OP))


def wait_released(nodes: Nodes, timeout: float = RELEASE_BUDGET_S) -> float:
    """Wait until the edge counts no call for OP; return how long that took."""
    started = time.monotonic()
    while operator_calls(nodes):
        assert time.monotonic() - started < timeout, f"{OP} still counted busy at the edge"
        time.sleep(0.02)  # the edge's profile changes with no event to this test: poll
    return time.monotonic() - started


def wait_avail(nodes: Nodes, name: str) -> None:
    """Wait until node `name` has qualified OP's contact (through the edge) as reachable."""
    wait_contact(nodes.asterisks[name], OP, timeout=QUALIFY_WAIT_S)


def ring(conn: AMIConnection) -> None:
    """The node offers OP a call, and does not wait for its outcome."""
    conn.send_action("Originate", Channel=f"PJSIP/{OP}", Application="Echo", Async="true",
                     Timeout="30000", timeout=15)  # fmt: skip


def refused(nodes: Nodes, conn: AMIConnection, name: str) -> float:
    """Node `name` tries OP and hears the edge's 486 at once; returns how long it took."""
    before = nodes.asterisks[name].cli("pjsip show history").count(BUSY)
    started = time.monotonic()
    with pytest.raises(ActionFailed):
        conn.send_action("Originate", Channel=f"PJSIP/{OP}", Application="Echo",
                         Timeout="10000", timeout=15)  # fmt: skip
    took = time.monotonic() - started
    assert nodes.asterisks[name].cli("pjsip show history").count(BUSY) == before + 1
    return took


@pytest.fixture
def amis(nodes: Nodes) -> Iterator[dict[str, AMIConnection]]:
    conns: dict[str, AMIConnection] = {}
    try:
        for name in ("a", "b"):
            config = node_config(nodes.edge_config, nodes.cluster, name)
            conns[name] = ami_connection(config, lambda _frame: None)
            conns[name].start()
            assert conns[name].wait_connected(15), f"node {name}'s AMI"
        yield conns
    finally:
        for conn in conns.values():
            conn.stop()


def test_an_operator_ringing_or_talking_on_one_node_is_busy_for_the_other(
    nodes: Nodes, amis: dict[str, AMIConnection]
) -> None:
    edge = nodes.edge_config.edge
    with Phone("127.0.0.1", user=OP) as phone:
        phone.register(f"sip:127.0.0.1:{edge.phone_port}", OP, PASSWORD)
        for name in ("a", "b"):
            wait_avail(nodes, name)
        assert operator_calls(nodes) == 0

        # Node a rings the operator: the edge counts the early dialog at once.
        ring(amis["a"])
        first: IncomingCall = phone.wait_incoming(10)
        assert operator_calls(nodes) == 1
        ringing = refused(nodes, amis["b"], "b")
        # Answered, the call still holds the operator.
        first.answer(200)
        first.wait_confirmed(5)
        talking = refused(nodes, amis["b"], "b")
        assert len(phone.incoming) == 1 and operator_calls(nodes) == 1
        assert f"operator={OP} node={ADDRESSES['b']}" in nodes.edge_log()

        # The operator hangs up (a BYE through the edge): free for every node at once.
        first.hangup()
        first.wait_disconnected(5)
        after_bye = wait_released(nodes)
        assert nodes.wait_no_channels("a") == 0

        # Now node b rings the operator, and node a is the one refused.
        ring(amis["b"])
        second = phone.wait_incoming(10)
        assert operator_calls(nodes) == 1
        refused(nodes, amis["a"], "a")
        # Node b gives up ringing (a CANCEL through the edge, the phone's 487): free again.
        amis["b"].send_action("Hangup", Channel=f"/^PJSIP.{OP}-/")
        second.wait_disconnected(5)
        after_cancel = wait_released(nodes)
        assert second.answered_at is None

        # And node a reaches the operator once more; this time the node hangs up (its BYE).
        ring(amis["a"])
        third = phone.wait_incoming(10)
        third.answer(200)
        third.wait_confirmed(5)
        assert operator_calls(nodes) == 1
        amis["a"].send_action("Hangup", Channel=f"/^PJSIP.{OP}-/")
        third.wait_disconnected(5)
        after_node_bye = wait_released(nodes)

        # The phone itself refuses a call: its own 486, which reads apart from the edge's.
        phone.busy()
        ring(amis["b"])
        phone.wait_incoming(10)
        after_refusal = wait_released(nodes)
        assert "SIP/2.0 486 Busy Here" in nodes.asterisks["b"].cli("pjsip show history")
    for name in ("a", "b"):
        assert nodes.wait_no_channels(name) == 0
    print(
        f"\nnode b refused in {ringing * 1000:.0f} ms (operator ringing on a), "
        f"{talking * 1000:.0f} ms (talking); the operator free for every node "
        f"{after_bye * 1000:.0f} ms after their BYE, {after_cancel * 1000:.0f} ms after the "
        f"ringing node's CANCEL, {after_node_bye * 1000:.0f} ms after the node's BYE, "
        f"{after_refusal * 1000:.0f} ms after the phone's own 486"
    )


def test_a_queue_on_the_other_node_takes_the_486_for_busy_and_rings_when_the_call_ends(
    nodes: Nodes, amis: dict[str, AMIConnection]
) -> None:
    """The operator is logged in on node b only (presence does not fan out yet) and talks on a
    call of node a. A caller without a cell reaches b and waits in its queue: b's app_queue
    meets the edge's 486 every time it tries the operator (retry, 1 s), and never rings them;
    once a's call ends, b's queue rings them, and the caller is answered."""
    edge = nodes.edge_config.edge
    b_config = node_config(nodes.edge_config, nodes.cluster, "b")
    history = nodes.asterisks["b"].cli
    with Phone("127.0.0.1", user=OP) as phone, ThreadPoolExecutor(1) as pool:
        phone.register(f"sip:127.0.0.1:{edge.phone_port}", OP, PASSWORD)
        for name in ("a", "b"):
            wait_avail(nodes, name)
        login = run_cli(b_config, "operators", "login", OP)
        assert login.returncode == 0, login.stdout + login.stderr
        try:
            ring(amis["a"])
            talking = phone.wait_incoming(10)
            talking.answer(200)
            talking.wait_confirmed(5)
            before = history("pjsip show history").count(BUSY)
            caller = pool.submit(call, nodes, "3GPP-E-UTRAN-FDD", "queued", 10000)
            deadline = time.monotonic() + 20
            while history("pjsip show history").count(BUSY) < before + 2:
                assert time.monotonic() < deadline, "node b's queue never met the edge's 486"
                time.sleep(0.1)  # the node's SIP history has no event for this test: poll
            assert len(phone.incoming) == 1, "node b's queue rang an operator on a call"
            talking.hangup()
            ended = time.monotonic()
            queued = phone.wait_incoming(10)
            rung = time.monotonic() - ended
            queued.answer(200)
            queued.wait_confirmed(5)
            caller.result(timeout=30)
            queued.wait_disconnected(10)
        finally:
            run_cli(b_config, "operators", "logout", OP)
    for name in ("a", "b"):
        assert nodes.wait_no_channels(name) == 0
    print(f"\nnode b's queue rang the operator {rung:.2f} s after their call on node a ended")
