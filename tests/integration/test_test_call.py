"""`telephony test-call` against a sandbox centre: a served IVR, routes, an operator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from telephony.location import import_routes, load_regions
from telephony.pbx.provision import AsteriskInstall
from telephony.phone import Phone
from telephony.resources import shipped
from telephony.store import open_database
from tests.harness.sandbox import Sandbox, start_sandbox, wait_contact
from tests.harness.service import ServeProcess, run_cli

pytestmark = pytest.mark.asterisk

# In config/routing.example.csv the whole of TAC 2561 routes to Kota Malang (35.73).
MALANG_PANI = "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=510100A010000001; network-provided"


@dataclass
class Centre:
    box: Sandbox
    service: ServeProcess


@pytest.fixture(scope="module")
def centre(
    asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Centre]:
    root = tmp_path_factory.mktemp("test-call")
    roster = root / "operators.toml"
    roster.write_text('[[operator]]\nid = "t1"\nregency = "35.73"\npassword = "secret-t1"\n')
    box = start_sandbox(asterisk_install, root, f"operators.file={roster}",
                        "location.pidf_lo=true")  # fmt: skip
    engine = open_database(box.config)
    import_routes(engine, shipped("config/routing.example.csv"),
                  regions=load_regions(shipped("config/regions.toml")))  # fmt: skip
    engine.dispose()
    service = ServeProcess(box.config, root / "serve.log")
    try:
        service.wait_ready()
        yield Centre(box, service)
    finally:
        service.stop()
        box.stop()


def rehearse(centre: Centre, *args: str) -> dict[str, object]:
    """`telephony test-call ... --json`, its report, and an exit status that agrees."""
    done = run_cli(centre.box.config, "test-call", *args, "--json")
    assert done.stdout, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    assert done.returncode == (0 if report["ok"] else 1), done.stdout + done.stderr
    return report


def test_a_key_pressed_late_in_the_call_routes_it_and_the_operator_who_rang_is_named(
    centre: Centre,
) -> None:
    """The key comes 2 s after the answer, well past pjsua2's 0.6 s without a media source:
    it reaches the IVR only if RTP kept flowing."""
    box = centre.box
    with Phone("127.0.0.1", user="t1") as operator:
        operator.register(f"sip:{box.phone_target}", "t1", "secret-t1", timeout=5)
        wait_contact(box, "t1")  # behind the edge: ringable from its first qualify
        operator.auto_answer(0.3)
        done = run_cli(box.config, "operators", "login", "t1")
        assert done.returncode == 0, done.stdout + done.stderr
        try:
            report = rehearse(centre, "--from", "+6281100000201", "--pani", MALANG_PANI,
                              "--key", "2", "--key-at", "2", "--hold", "6")  # fmt: skip
        finally:
            run_cli(box.config, "operators", "logout", "t1")
    assert report["ok"] and report["answered"], report
    assert (report["emergency_type"], report["language"]) == ("medical", "id"), report
    assert (report["queue"], report["regency"]) == ("reg-3573", "35.73"), report
    assert report["rang"] == ["t1"] and report["answered_by"] == "t1", report
    audit = report["audit"]
    assert isinstance(audit, dict), report
    call = audit["call"]
    assert call["linkedid"] == report["linkedid"] and call["caller"] == "+6281100000201", call
    assert call["emergency_type"] == "medical" and call["regency_code"] == "35.73", call
    assert box.wait_no_channels() == 0


def test_a_pidf_lo_circle_is_the_location_and_nobody_answering_is_reported(
    centre: Centre,
) -> None:
    report = rehearse(centre, "--pidf=-7.9826,112.6308,18", "--key", "1", "--hold", "3")
    assert report["answered"] and report["emergency_type"] == "police", report
    # With location.pidf_lo on, Asterisk parses the PIDF-LO into the geolocation profile.
    assert report["location_source"] == "geoloc-profile", report
    assert report["regency"] == "35.73", report
    assert report["rang"] == [] and report["answered_by"] is None, report
    assert centre.box.wait_no_channels() == 0


def test_the_text_report_names_each_fact(centre: Centre) -> None:
    done = run_cli(centre.box.config, "test-call", "--key", "3", "--hold", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    for label in ("answered    yes", "ivr choice  fire, language id", "queue       prov-35",
                  "rang        no operator phone", "audit record", "timeline"):  # fmt: skip
        assert label in done.stdout, done.stdout
