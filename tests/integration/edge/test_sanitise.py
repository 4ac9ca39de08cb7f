"""What a broken or hostile trunk INVITE becomes at the edge (docs/edge.md, "Sanitising").

Percent-encoded control characters are valid SIP, and Asterisk 22.10.1 decodes them raw into
AMI (issue 12): the edge replaces them and the call goes on. Raw ones make the request
unparseable and are refused with 400, as are oversized requests (413, 513).
"""

from __future__ import annotations

import pytest

from telephony.ami import Frame
from telephony.control import Watcher, watching
from tests.harness.raw import invite
from tests.integration.edge.conftest import Edge, history, hostile

pytestmark = pytest.mark.asterisk

# The forged From of issue 12: a blank line, then a whole AMI event with its own Linkedid.
INJECTION = ("%0D%0A%0D%0AEvent%3A%20UserEvent%0D%0AUserEvent%3A%20Forged"
             "%0D%0ALinkedid%3A%20fake-1%0D%0A")


def assert_nothing_forged(ami: Watcher) -> None:
    forged = [s.frame for s in ami.seen if s.frame.get("UserEvent") == "Forged"
              or "fake-1" in s.frame.get_all("Linkedid")]
    assert forged == [], forged


def joined(ami: Watcher, number: str) -> Frame:
    return ami.wait_for("QueueCallerJoin", lambda f: f.get("CallerIDNum") == number).frame


@pytest.mark.parametrize(
    ("keys", "number"),
    [
        ({"from": "0812" + INJECTION}, "0812"),
        ({"from": INJECTION + "0812"}, "anonymous"),
        ({"from": "0812", "display": '"Budi%0D%0AEvent%3A%20x"'}, "0812"),
        ({"pai": f"P-Asserted-Identity: <sip:+6281234{INJECTION}@mno.example;user=phone>"},
         "+6281234"),
        ({"to": "112" + INJECTION}, "081234567890"),
    ],
    ids=["from-user", "from-user-first", "display-name", "pai", "to"],
)
def test_control_characters_in_the_callers_identity_are_replaced_and_the_call_is_queued(
    quiet_edge: Edge, keys: dict[str, str], number: str
) -> None:
    sanitised = quiet_edge.stats().counter("sanitised")
    with watching(quiet_edge.box.config) as ami:
        ok, out = hostile(quiet_edge, **keys)
        assert ok, out
        join = joined(ami, number)
        assert "Event" not in (join.get("CallerIDName") or "")
        assert_nothing_forged(ami)
    assert quiet_edge.stats().counter("sanitised") == sanitised + 1


@pytest.mark.parametrize(
    ("dialled", "exten"),
    [
        ("112" + INJECTION, "112"),
        ("sos", "112"),
        ("0341-123.456", "0341123456"),
        ("110;phone-context=+62", "110"),
        ("()", "112"),
    ],
    ids=["injected", "sos", "separators", "user-parameter", "nothing-left"],
)
def test_the_dialled_number_is_normalised_so_the_dialplan_sees_a_clean_number(
    quiet_edge: Edge, dialled: str, exten: str
) -> None:
    normalised = quiet_edge.stats().counter("normalised")
    with watching(quiet_edge.box.config) as ami:
        ok, out = hostile(quiet_edge, ruri=dialled, **{"from": "081200000077"})
        assert ok, out
        channel = ami.wait_for(
            "Newchannel", lambda f: f.get("CallerIDNum") == "081200000077"
        ).frame
        assert channel.get("Exten") == exten
        joined(ami, "081200000077")
        assert_nothing_forged(ami)
    assert quiet_edge.stats().counter("normalised") == normalised + 1


def test_a_clean_trunk_call_is_passed_unchanged(quiet_edge: Edge) -> None:
    before = quiet_edge.stats().counters
    with watching(quiet_edge.box.config) as ami:
        ok, out = hostile(quiet_edge, **{"from": "081200000078"})
        assert ok, out
        joined(ami, "081200000078")
    assert quiet_edge.stats().counters == before


def edge_address(edge: Edge) -> tuple[str, int]:
    return edge.box.config.edge.bind, edge.box.config.edge.port


@pytest.mark.parametrize(
    ("user", "extra", "body", "code", "counter"),
    [
        (b"0812\x00Event: UserEvent", b"", None, 400, "refused_malformed"),
        (b"0812\rEvent: UserEvent", b"", None, 400, "refused_malformed"),
        (b"0812", b"X-Pad: " + b"a" * 9000 + b"\r\n", None, 513, "refused_oversize"),
        (b"0812", b"", b"v=0\r\n" + b"a=x-pad:" + b"b" * 20000 + b"\r\n", 413,
         "refused_oversize"),
    ],
    ids=["raw-nul", "raw-cr", "headers", "body"],
)
def test_unparseable_or_oversized_requests_are_refused_before_asterisk(
    quiet_edge: Edge, user: bytes, extra: bytes, body: bytes | None, code: int, counter: str
) -> None:
    before = len(history(quiet_edge))
    count = quiet_edge.stats().counter(counter)
    answer = invite(edge_address(quiet_edge), user=user, extra=extra, body=body)
    assert answer.code == code, answer.final
    assert quiet_edge.stats().counter(counter) == count + 1
    assert len(history(quiet_edge)) == before
