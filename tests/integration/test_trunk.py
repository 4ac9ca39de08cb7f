"""The trunk reaches the 112 dialplan; nobody else does."""

from __future__ import annotations

import csv
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from telephony.control import watching
from telephony.pbx.provision import AsteriskInstall
from tests.harness.sandbox import Sandbox, start_sandbox
from tests.harness.sipp import run_scenario

pytestmark = pytest.mark.asterisk


def cel_rows(sandbox: Sandbox) -> list[dict[str, str]]:
    fields = ["event", "time", "uniqueid", "linkedid", "channel", "cid_num", "exten",
              "context", "app", "appdata", "peer", "extra"]
    path = sandbox.layout.cel_csv
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [dict(zip(fields, row, strict=False)) for row in csv.reader(fh)]


def test_trunk_call_to_112_is_answered_and_queued(no_leaks: Sandbox) -> None:
    before = len(cel_rows(no_leaks))
    result = run_scenario(
        "uac_112.xml", no_leaks.sip_target, workdir=no_leaks.workdir, extra=("-d", "2000")
    )
    assert result.ok, result.output + result.errors
    assert no_leaks.wait_no_channels() == 0
    rows = cel_rows(no_leaks)[before:]
    events = [(r["event"], r["context"], r["app"]) for r in rows]
    assert ("CHAN_START", "from-trunk-112", "") in events
    assert any(e == "APP_START" and app == "Queue" for e, _, app in events) or any(
        r["context"] == "emergency-112" and r["exten"] == "queue" for r in rows
    ), events
    assert rows[-1]["event"] == "LINKEDID_END"


@pytest.mark.parametrize(
    ("user", "logged"),
    [("sos@", "sos"), ("", "s"), ("5@", "5"), ("SOS%3Bx%3D%5Bevil%5D@", "SOSxevil")],
    ids=["word", "no-user-part", "one-digit", "odd-characters"],
)
def test_whatever_the_trunk_dials_is_answered_as_112_and_logged_filtered(
    no_leaks: Sandbox, user: str, logged: str
) -> None:
    # Issue 12 (5): these got a 404 from PJSIP before the dialplan ran.
    target = no_leaks.sip_target
    log = no_leaks.layout.log / "messages.log"
    before = log.stat().st_size if log.exists() else 0
    edge = no_leaks.edge
    normalised = edge.rpc.statistics().counter("normalised") if edge else 0
    with watching(no_leaks.config) as ami:
        result = run_scenario("uac_trunk_uri.xml", target, workdir=no_leaks.workdir,
                              extra=("-key", "ruri", f"sip:{user}{target}", "-d", "2500"))
        assert result.ok, result.output + result.errors
        joined = ami.wait_for("QueueCallerJoin", timeout=5)
    # The IVR is not running here: the call failed open into the default queue, as 112.
    assert joined.frame.get("Queue") == no_leaks.config.ivr.default_queue
    with log.open(errors="replace") as fh:
        fh.seek(before)
        lines = [ln for ln in fh if "from the trunk, handled as 112" in ln]
    if edge is not None and not logged.isdigit():
        # The edge made it 112 before Asterisk saw it (issue 15); the dialplan's own rule
        # stays for direct mode, and for a number the edge lets through.
        assert edge.rpc.statistics().counter("normalised") > normalised
        assert lines == [], lines
    else:
        assert any(f"unexpected number {logged} from the trunk" in ln for ln in lines), lines
    assert no_leaks.wait_no_channels() == 0


@pytest.mark.parametrize("source", ["127.0.0.3", "127.0.0.1"])
def test_non_trunk_source_is_refused(no_leaks: Sandbox, source: str) -> None:
    before = len(cel_rows(no_leaks))
    edge = no_leaks.edge
    refused = edge.rpc.statistics().counter("refused_untrusted") if edge else 0
    result = run_scenario(
        "uac_refused.xml", no_leaks.sip_target, source=source, workdir=no_leaks.workdir
    )
    assert result.ok, result.output + result.errors
    assert cel_rows(no_leaks)[before:] == [], "a refused INVITE created a channel"
    if edge is not None:
        # The edge refused it (403): Asterisk never saw the request.
        assert edge.rpc.statistics().counter("refused_untrusted") > refused
    else:
        security = (no_leaks.layout.log / "security.log").read_text()
        assert "InvalidAccountID" in security or "ChallengeSent" in security


def test_a_graceful_stop_lets_the_call_in_progress_finish(
    asterisk_install: AsteriskInstall, tmp_path: Path
) -> None:
    """Asterisk.stop() refuses new calls and waits for those up; it does not cut them."""
    box = start_sandbox(asterisk_install, tmp_path)
    try:
        with watching(box.config) as ami, ThreadPoolExecutor(1) as pool:
            call = pool.submit(run_scenario, "uac_112.xml", box.sip_target,
                               workdir=tmp_path, extra=("-d", "4000"))  # fmt: skip
            ami.wait_for("Newchannel", timeout=10)
            started = time.monotonic()
            box.asterisk.stop(timeout=15)
            stopped_after = time.monotonic() - started
            result = call.result()
        assert result.ok, result.output + result.errors  # the caller hung up, not Asterisk
        assert box.asterisk.pid() is None
        assert 2.0 < stopped_after < 15.0, stopped_after
    finally:
        box.stop()
