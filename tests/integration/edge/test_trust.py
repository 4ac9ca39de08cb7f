"""Trunk trust at the edge: who may call, and how Asterisk knows which trunk it was."""

from __future__ import annotations

import re
from functools import partial

import pytest

from telephony.ami.frames import Frame
from telephony.control import watching
from tests.harness.raw import invite
from tests.harness.sandbox import INSIDE
from tests.harness.sipp import run_scenario
from tests.integration.edge.conftest import Edge, history, hostile

pytestmark = pytest.mark.asterisk

def test_each_trunk_is_identified_by_the_edge_and_asterisk_sees_only_the_edge(
    quiet_edge: Edge,
) -> None:
    with watching(quiet_edge.box.config) as ami:
        for source, name in (("127.0.0.2", "mno"), ("127.0.0.4", "telco2")):
            before = len(history(quiet_edge))
            # A trunk that names another trunk is not believed: the edge says which it is.
            ok, out = hostile(quiet_edge, source, pai="X-Telephony-Trunk: telco2")
            assert ok, out
            ami.wait_for("Newchannel", partial(on_trunk, name), timeout=10)
            entries = history(quiet_edge)[before:]
            assert entries and all(peer.startswith(f"{INSIDE}:") for _, peer, _ in entries)
            number = next(n for n, _, line in entries if line.startswith("INVITE "))
            received = quiet_edge.box.asterisk.cli(f"pjsip show history entry {number}")
            assert received.count("X-Telephony-Trunk:") == 1, received
            assert f"X-Telephony-Trunk: {name}" in received, received
            assert re.search(rf"X-Telephony-Source: {re.escape(source)}:\d+", received)


@pytest.mark.parametrize("source", ["127.0.0.9", "127.0.0.1"])
def test_a_source_that_is_not_a_trunk_gets_403_and_asterisk_never_sees_it(
    quiet_edge: Edge, source: str
) -> None:
    before = len(history(quiet_edge))
    refused = quiet_edge.stats().counter("refused_untrusted")
    result = run_scenario("uac_refused.xml", quiet_edge.target, source=source,
                          workdir=quiet_edge.box.workdir)
    assert result.ok, result.output + result.errors
    assert quiet_edge.stats().counter("refused_untrusted") == refused + 1
    assert len(history(quiet_edge)) == before, quiet_edge.asterisk_history()


def test_asterisk_refuses_a_trunk_header_that_does_not_come_from_the_edge(
    quiet_edge: Edge,
) -> None:
    """Behind the edge, Asterisk's identify matches the header, and only the edge's address
    may send it: the trunk going round the edge is refused, whatever it claims."""
    asterisk = quiet_edge.box.config.asterisk
    host, port = asterisk.sip_bind, asterisk.sip_port
    answer = invite((host, port), extra=b"X-Telephony-Trunk: mno\r\n")
    assert answer.code in (401, 403), answer.final


def on_trunk(name: str, frame: Frame) -> bool:
    return (frame.get("Channel") or "").startswith(f"PJSIP/trunk-{name}-")
