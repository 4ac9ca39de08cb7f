"""Caller number and location from real INVITEs (SIPp) to the right regency queue."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest

from telephony.ami.frames import Frame
from telephony.control import Watcher, watching
from telephony.location import import_cells, import_routes, load_regions
from telephony.pbx.provision import AsteriskInstall
from telephony.store import open_database
from tests.harness.sandbox import DIRECT, Sandbox, start_sandbox
from tests.harness.service import ServeProcess
from tests.harness.sipp import SippResult, run_scenario

pytestmark = pytest.mark.asterisk

CONFIG = Path(__file__).resolve().parents[2] / "config"
# In config/routing.example.csv: MCC 510, MNC 10, TAC 8705 (0x2201), ECI 703710 (0x00ABCDE)
# routes to Kab. Malang. The PIDF-LO point is in Kota Surabaya: a routing mix-up shows.
EUTRAN_PANI = "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=51010220100ABCDE; network-provided"
SURABAYA = ("-7.2575", "112.7521")
KOTA_MALANG = ("-7.9666", "112.6326")  # Klojen, the city centre


@pytest.fixture
def located(no_leaks: Sandbox, tmp_path: Path) -> Iterator[tuple[Sandbox, Watcher]]:
    engine = open_database(no_leaks.config)
    regions = load_regions(CONFIG / "regions.toml")
    import_routes(engine, CONFIG / "routing.example.csv", regions=regions)
    import_cells(engine, CONFIG / "cells.example.csv")
    engine.dispose()
    proc = ServeProcess(no_leaks.config, tmp_path / "serve.log")
    try:
        proc.wait_ready()
        with watching(no_leaks.config) as ami:
            yield no_leaks, ami
    finally:
        proc.stop()


def call(sandbox: Sandbox, scenario: str, **keys: str) -> SippResult:
    extra: list[str] = ["-d", "12000"]  # silent: through the IVR into the queue
    for key, value in keys.items():
        extra += ["-key", key, value]
    return run_scenario(
        scenario, sandbox.sip_target, workdir=sandbox.workdir, extra=tuple(extra), timeout_s=40
    )


def queued_as(ami: Watcher, number: str) -> dict[str, str]:
    """The IVRLocation and CallQueued facts the dialplan reported for caller `number`."""
    join = ami.wait_for("QueueCallerJoin", lambda f: f.get("CallerIDNum") == number, timeout=30)
    linkedid = join.frame.get("Linkedid")
    facts = {"JoinedQueue": join.frame.get("Queue") or ""}
    for kind in ("IVRLocation", "CallQueued"):
        event = ami.wait_for(
            "UserEvent",
            partial(is_user_event, kind, linkedid),
            timeout=5,
        )
        facts.update({k: v for k, v in event.frame.fields})
    return facts


def is_user_event(kind: str, linkedid: str | None, frame: Frame) -> bool:
    return frame.get("UserEvent") == kind and frame.get("Linkedid") == linkedid


def test_cell_and_pidf_route_to_different_regencies_and_bad_input_to_the_province(
    located: tuple[Sandbox, Watcher],
) -> None:
    sandbox, ami = located
    calls = {
        "cell": ("uac_112_pani.xml", {"pai": "<sip:081230000001@mno.example;user=phone>",
                                      "pani": EUTRAN_PANI}),
        "pidf": ("uac_112_pidf.xml", {"pai": "<sip:+6281230000002@mno.example;user=phone>",
                                      "lat": SURABAYA[0], "lon": SURABAYA[1],
                                      "rules": "<gp:usage-rules/>"}),
        "bad-pani": ("uac_112_pani.xml", {"pai": "<sip:6281230000003@mno.example;user=phone>",
                                          "pani": "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=51;;"}),
        "none": ("uac_112_pani.xml", {"pai": "<sip:081230000004@mno.example;user=phone>",
                                      "pani": "IEEE-802.11"}),
    }
    with ThreadPoolExecutor(len(calls)) as pool:
        results = {name: pool.submit(call, sandbox, scenario, **keys)
                   for name, (scenario, keys) in calls.items()}
        facts = {
            "cell": queued_as(ami, "081230000001"),
            "pidf": queued_as(ami, "+6281230000002"),
            "bad-pani": queued_as(ami, "6281230000003"),
            "none": queued_as(ami, "081230000004"),
        }
        for name, future in results.items():
            outcome = future.result()
            assert outcome.ok, f"{name}: {outcome.output}{outcome.errors}"

    cell = facts["cell"]
    assert cell["JoinedQueue"] == "reg-3507" and cell["RegencyCode"] == "35.07"
    assert cell["Source"] == "cell-route" and cell["CellId"] == "LTE:510-10-8705-703710"
    assert cell["CallerE164"] == "+6281230000001"

    pidf = facts["pidf"]
    assert pidf["JoinedQueue"] == "reg-3578" and pidf["RegencyCode"] == "35.78"
    assert pidf["Source"] in ("pidf-lo", "geoloc-profile")
    assert float(pidf["Lat"]) == pytest.approx(-7.2575)
    assert pidf["CallerE164"] == "+6281230000002"

    for name in ("bad-pani", "none"):
        assert facts[name]["JoinedQueue"] == "prov-35", name
        assert facts[name]["RegencyCode"] == "", name
        assert facts[name]["Source"] == "", name  # no usable location: province default
    assert facts["bad-pani"]["CallerE164"] == "+6281230000003"
    assert all(f["EmergencyType"] == "unknown" for f in facts.values())


def test_with_the_defaults_a_pidf_lo_without_usage_rules_is_stripped_and_a_good_one_routes(
    located: tuple[Sandbox, Watcher],
) -> None:
    """Issue 15: the session sandbox has the default config (the edge in front, location.pidf_lo
    on). A PIDF-LO without <usage-rules>, which crashes Asterisk 22.10.1, is stripped by the
    edge and the call is queued by its cell (none here: the province); a well-formed one
    reaches Asterisk and routes by its point."""
    sandbox, ami = located
    assert sandbox.edge is not None and sandbox.config.location.pidf_lo
    before = sandbox.edge.rpc.statistics().counter("pidf_stripped")
    calls = {
        "no-rules": {"pai": "<sip:081230000010@mno.example>", "lat": SURABAYA[0],
                     "lon": SURABAYA[1], "rules": "<!-- no usage-rules -->"},
        "malang": {"pai": "<sip:081230000011@mno.example>", "lat": KOTA_MALANG[0],
                   "lon": KOTA_MALANG[1], "rules": "<gp:usage-rules/>"},
    }
    with ThreadPoolExecutor(len(calls)) as pool:
        results = [pool.submit(call, sandbox, "uac_112_pidf.xml", **keys)
                   for keys in calls.values()]
        stripped = queued_as(ami, "081230000010")
        malang = queued_as(ami, "081230000011")
        for future in results:
            outcome = future.result()
            assert outcome.ok, outcome.output + outcome.errors
    assert stripped["JoinedQueue"] == "prov-35" and stripped["Source"] == ""
    assert malang["JoinedQueue"] == "reg-3573" and malang["RegencyCode"] == "35.73"
    assert malang["Source"] in ("pidf-lo", "geoloc-profile")
    assert sandbox.edge.rpc.statistics().counter("pidf_stripped") == before + 1
    assert sandbox.asterisk.pid() is not None and sandbox.wait_no_channels() == 0


def test_in_direct_mode_asterisk_never_parses_a_pidf_lo_so_one_without_usage_rules_is_harmless(
    asterisk_install: AsteriskInstall, tmp_path: Path
) -> None:
    """Direct mode (no edge): location.pidf_lo must be off (the config refuses it on), so
    Asterisk 22.10.1 never parses a PIDF-LO, and one without <usage-rules> is queued."""
    box = start_sandbox(asterisk_install, tmp_path, *DIRECT)
    assert box.edge is None and box.sip_target == box.asterisk_target
    proc = ServeProcess(box.config, tmp_path / "serve.log")
    try:
        pjsip = (box.layout.etc / "pjsip_112.conf").read_text()
        assert "geoloc_incoming_call_profile" not in pjsip
        proc.wait_ready()
        with watching(box.config) as ami:
            result = run_scenario(
                "uac_112_pidf.xml", box.sip_target, workdir=tmp_path,
                extra=("-d", "12000", "-key", "pai", "<sip:081230000010@mno.example>",
                       "-key", "lat", SURABAYA[0], "-key", "lon", SURABAYA[1],
                       "-key", "rules", "<!-- no usage-rules -->"), timeout_s=40,
            )
            facts = queued_as(ami, "081230000010")
        assert result.ok, result.output + result.errors
        assert facts["JoinedQueue"] == "prov-35" and facts["Source"] == ""
        assert box.wait_no_channels() == 0  # and Asterisk still answers its CLI
    finally:
        proc.stop()
        box.stop()


def test_an_untrusted_trunks_cell_is_recorded_but_does_not_route(
    asterisk_install: AsteriskInstall, tmp_path: Path
) -> None:
    trunks = tmp_path / "trunks.toml"
    trunks.write_text('[[trunk]]\nname = "pbx"\nnetworks = ["127.0.0.4/32"]\n'
                      "trust_location = false\n")
    box = start_sandbox(asterisk_install, tmp_path, f"asterisk.trunks_file={trunks}")
    proc = ServeProcess(box.config, tmp_path / "serve.log")
    try:
        engine = open_database(box.config)
        import_routes(engine, CONFIG / "routing.example.csv",
                      regions=load_regions(CONFIG / "regions.toml"))
        engine.dispose()
        proc.wait_ready()
        with watching(box.config) as ami:
            result = run_scenario(
                "uac_112_pani.xml", box.sip_target, source="127.0.0.4", workdir=tmp_path,
                extra=("-d", "12000", "-key", "pai", "<sip:081230000009@pbx.example>",
                       "-key", "pani", EUTRAN_PANI), timeout_s=40,
            )
            facts = queued_as(ami, "081230000009")
        assert result.ok, result.output + result.errors
        assert facts["Trunk"] == "pbx"
        assert facts["JoinedQueue"] == "prov-35" and facts["CellId"] == ""
        assert facts["CellReported"] == "LTE:510-10-8705-703710"
        refused = run_scenario("uac_refused.xml", box.sip_target, source="127.0.0.5",
                               workdir=tmp_path)
        assert refused.ok, refused.output + refused.errors
        assert box.wait_no_channels() == 0
    finally:
        proc.stop()
        box.stop()
