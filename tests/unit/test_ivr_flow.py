"""The 112 IVR driven over a real FastAGI socket by a fake Asterisk."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from telephony.agi import IVR, DefaultRouter, FastAGIServer, RouteDecision, Router
from telephony.agi.ivr import CALL_VARIABLES
from tests.harness.agi import CLOSE, Close, FakeAsterisk, serving, split_args, thread_errors

PROMPTS = Path(__file__).resolve().parents[2] / "ivr_prompts"
DEFAULT_QUEUE = "q-default"


class RecordingRouter:
    def __init__(self, decision: RouteDecision | None = None, delay: float = 0.0) -> None:
        self.calls: list[tuple[dict[str, str], str]] = []
        self._decision = decision or RouteDecision("q-located")
        self._delay = delay

    def route(self, session_vars: Mapping[str, str], emergency_type: str) -> RouteDecision:
        self.calls.append((dict(session_vars), emergency_type))
        time.sleep(self._delay)
        return self._decision


class BrokenRouter:
    def route(self, session_vars: Mapping[str, str], emergency_type: str) -> RouteDecision:
        raise RuntimeError("location database down")


def ivr(router: Router | None = None, **options: Any) -> IVR:
    chosen = router if router is not None else DefaultRouter(DEFAULT_QUEUE)
    return IVR(PROMPTS, chosen, fallback_queue=DEFAULT_QUEUE, **options)


@pytest.fixture
def server() -> Iterator[FastAGIServer]:
    with thread_errors() as errors, serving({"ivr": ivr()}) as running:
        yield running
    assert errors == []


def test_silent_caller_goes_to_default_queue_as_unknown(server: FastAGIServer) -> None:
    t = FakeAsterisk(server.address).run()

    assert t.variables == {
        "EMERGENCY_TYPE": "unknown",
        "IVR_LANGUAGE": "id",
        "QUEUE_PRIORITY": "10",
        "SCREEN_TAG": "112",
        "TARGET_QUEUE": DEFAULT_QUEUE,
        "IVR_STATUS": "OK",
    }
    assert t.set_order[-1] == "IVR_STATUS"
    # Every variable but IVR_STATUS in one round trip.
    sets = [c.split(" ")[:2] for c in t.commands if c.startswith(("SET VARIABLE", "EXEC MSet"))]
    assert sets == [["EXEC", "MSet"], ["SET", "VARIABLE"]]
    assert t.played[:2] == ["id/welcome", "id/menu"]
    assert any(c.startswith("WAIT FOR DIGIT 3000") for c in t.commands)
    assert t.events == ["IVRChoice,Digit: ,EmergencyType: unknown,Language: id,Source: silence"]
    assert t.server_closed


def test_key_during_welcome_counts_at_once_and_skips_menu(server: FastAGIServer) -> None:
    t = FakeAsterisk(server.address, keys={"id/welcome": "2"}).run()

    assert t.played == ["id/welcome"]
    assert t.variables["EMERGENCY_TYPE"] == "medical"
    assert t.variables["QUEUE_PRIORITY"] == "20"
    assert t.variables["SCREEN_TAG"] == "AMB"
    assert t.variables["IVR_STATUS"] == "OK"
    assert t.events == ["IVRChoice,Digit: 2,EmergencyType: medical,Language: id,Source: dtmf"]


def test_the_welcome_is_the_first_command_so_an_early_key_is_not_dropped(
    server: FastAGIServer,
) -> None:
    # res_agi reads and discards DTMF that arrives between AGI commands.
    t = FakeAsterisk(server.address, keys={"id/welcome": "1"}).run()

    first_prompt = next(n for n, c in enumerate(t.commands) if c.startswith("STREAM FILE"))
    # Only the session's own linkedid (for its log lines) is read before the welcome.
    assert t.commands[:first_prompt] == ['GET FULL VARIABLE "${CHANNEL(linkedid)}"']
    assert "welcome" in t.commands[first_prompt]
    assert t.variables["EMERGENCY_TYPE"] == "police"


def test_every_prompt_allows_barge_in(server: FastAGIServer) -> None:
    t = FakeAsterisk(server.address).run()
    streams = {split_args(c)[2].rsplit("/", 1)[1]: split_args(c)[3]
               for c in t.commands if c.startswith("STREAM FILE")}

    assert streams == {"welcome": "0123456789*#", "menu": "0123456789*#"}
    assert all(Path(split_args(c)[2]).is_absolute() for c in t.commands
               if c.startswith("STREAM FILE"))


@pytest.mark.parametrize("bad_key", ["*", "#", "0", "7", "8"])
def test_invalid_key_reprompts_once_then_valid_key(server: FastAGIServer, bad_key: str) -> None:
    t = FakeAsterisk(server.address, keys={"id/welcome": bad_key, "id/menu": "3"}).run()

    assert t.played == ["id/welcome", "id/invalid", "id/menu"]
    assert t.variables["EMERGENCY_TYPE"] == "fire"
    assert t.variables["IVR_STATUS"] == "OK"


def test_second_invalid_key_goes_to_operator(server: FastAGIServer) -> None:
    t = FakeAsterisk(server.address, keys={"id/welcome": "*"}, waits=["#"]).run()

    assert t.played == ["id/welcome", "id/invalid", "id/menu"]
    assert t.variables["EMERGENCY_TYPE"] == "unknown"
    assert t.variables["IVR_STATUS"] == "OK"
    assert t.events[0].endswith("Digit: #,EmergencyType: unknown,Language: id,Source: invalid")


def test_key_after_menu_counts(server: FastAGIServer) -> None:
    t = FakeAsterisk(server.address, waits=["1"]).run()

    assert t.variables["EMERGENCY_TYPE"] == "police"


def test_nine_switches_to_english(server: FastAGIServer) -> None:
    t = FakeAsterisk(server.address, keys={"id/menu": "9", "en/menu": "4"}).run()

    assert t.played == ["id/welcome", "id/menu", "en/menu"]
    assert t.variables["EMERGENCY_TYPE"] == "sar"
    assert t.variables["IVR_LANGUAGE"] == "en"
    assert t.events == ["IVRChoice,Digit: 4,EmergencyType: sar,Language: en,Source: dtmf"]


def test_nine_in_english_is_invalid(server: FastAGIServer) -> None:
    t = FakeAsterisk(server.address, keys={"id/welcome": "9", "en/menu": "9"}).run()

    assert t.played[:4] == ["id/welcome", "en/menu", "en/invalid", "en/menu"]
    assert t.variables["IVR_LANGUAGE"] == "en"


def test_dtmf_flood_only_first_key_counts(server: FastAGIServer) -> None:
    keys = {"id/welcome": "5"}
    t = FakeAsterisk(server.address, keys=keys, waits=list("1234" * 50)).run()

    assert t.variables["EMERGENCY_TYPE"] == "disaster"
    assert not any(c.startswith("WAIT FOR DIGIT") for c in t.commands)


@pytest.mark.parametrize("preset", ["police", "medical", "fire", "sar", "disaster", " FIRE "])
def test_preset_type_skips_menu(server: FastAGIServer, preset: str) -> None:
    t = FakeAsterisk(server.address, args=[preset]).run()

    assert t.played == ["id/welcome"]
    assert t.variables["EMERGENCY_TYPE"] == preset.strip().lower()
    assert t.variables["IVR_STATUS"] == "OK"
    assert t.events[0].endswith(",Source: preset")


def test_unknown_preset_falls_back_to_menu(server: FastAGIServer) -> None:
    t = FakeAsterisk(server.address, args=["pizza"], keys={"id/menu": "1"}).run()

    assert t.variables["EMERGENCY_TYPE"] == "police"


def test_router_gets_sip_headers_and_sets_its_variables() -> None:
    router = RecordingRouter(RouteDecision("q-jakarta", {"LOCATION_SOURCE": 'pidf "x" \\y'}))
    headers = {
        "${PJSIP_HEADER(read,P-Asserted-Identity)}": "<sip:+6281234567890@ims>",
        "${PJSIP_HEADER(read,Geolocation)}": "<cid:loc@ue>",
        "${GEOLOC_PROFILE(location_info)}": "location=-6.2,106.8",
    }
    with serving({"ivr": ivr(router)}) as server:
        t = FakeAsterisk(server.address, variables=headers, keys={"id/welcome": "2"}).run()

    session_vars, emergency_type = router.calls[0]
    assert emergency_type == "medical"
    assert session_vars["P-Asserted-Identity"] == "<sip:+6281234567890@ims>"
    assert session_vars["Geolocation"] == "<cid:loc@ue>"
    assert session_vars["location_info"] == "location=-6.2,106.8"
    assert session_vars["From"] == ""
    assert session_vars["linkedid"] == "1700000000.1"
    assert session_vars["uniqueid"] == "1700000000.2"
    assert t.variables["TARGET_QUEUE"] == "q-jakarta"
    assert t.variables["LOCATION_SOURCE"] == 'pidf "x" \\y'
    assert t.set_order[-1] == "IVR_STATUS"


@pytest.mark.parametrize(
    "router",
    [
        BrokenRouter(),
        RecordingRouter(RouteDecision("bad queue; Hangup()")),
        RecordingRouter(delay=2.0),
    ],
    ids=["raises", "bad-queue", "too-slow"],
)
def test_router_failure_means_default_queue(router: Router) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs, \
            serving({"ivr": ivr(router, router_timeout=0.3)}) as server:
        started = time.monotonic()
        t = FakeAsterisk(server.address, keys={"id/welcome": "1"}).run()
        elapsed = time.monotonic() - started

    assert t.variables["TARGET_QUEUE"] == DEFAULT_QUEUE
    assert t.variables["IVR_STATUS"] == "OK"
    assert elapsed < 1.0
    assert any("fallback" in e["event"] and e.get("linkedid") == "1700000000.1" for e in logs)


def test_router_cannot_overwrite_contract_variables() -> None:
    decision = RouteDecision("q-x", {"IVR_STATUS": "OK", "EMERGENCY_TYPE": "fire",
                                     "bad name": "1", "MULTI": "a\nb", "ZONE": "3"})
    with serving({"ivr": ivr(RecordingRouter(decision))}) as server:
        t = FakeAsterisk(server.address, keys={"id/welcome": "1"}).run()

    assert t.variables["EMERGENCY_TYPE"] == "police"
    assert t.variables["ZONE"] == "3"
    assert "MULTI" not in t.variables and "bad name" not in t.variables
    assert t.set_order.count("IVR_STATUS") == 1


def test_hangup_mid_prompt_ends_cleanly(server: FastAGIServer) -> None:
    def hang_up(line: str) -> str | None:
        return "200 result=-1 endpos=0\nHANGUP\n" if "/id/menu" in line else None

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        t = FakeAsterisk(server.address, hook=hang_up).run()

    assert t.variables.get("IVR_STATUS") != "OK"
    assert t.server_closed
    assert any(e.get("linkedid") == "1700000000.1" and e["log_level"] in {"info", "warning"}
               for e in logs if "agi" in e["event"])
    assert FakeAsterisk(server.address, keys={"id/welcome": "1"}).run().variables[
        "IVR_STATUS"] == "OK"


def test_connection_dropped_mid_flow(server: FastAGIServer) -> None:
    def drop(line: str) -> Close | None:
        return CLOSE if "/id/menu" in line else None

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        FakeAsterisk(server.address, hook=drop).run()
        deadline = time.monotonic() + 2
        while server.active_sessions and time.monotonic() < deadline:
            time.sleep(0.01)

    assert server.active_sessions == 0
    lost = [e for e in logs if e["event"] == "agi.connection_lost"]
    assert lost and lost[0]["linkedid"] == "1700000000.1"


def test_garbage_reply_reports_failure(server: FastAGIServer) -> None:
    def garbage(line: str) -> str | None:
        return "200 result=banana\n" if "/id/welcome" in line else None

    t = FakeAsterisk(server.address, hook=garbage).run()

    assert t.variables == {"IVR_STATUS": "FAILED"}


def test_deadline_skips_prompts_that_would_overrun() -> None:
    with serving({"ivr": ivr(deadline=0.5)}) as server:
        t = FakeAsterisk(server.address).run()

    assert t.played == []
    assert t.variables["EMERGENCY_TYPE"] == "unknown"
    assert t.variables["IVR_STATUS"] == "OK"
    assert t.events[0].endswith("Source: deadline")


def test_prompts_dir_is_checked_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="welcome"):
        IVR(tmp_path, DefaultRouter("q"), fallback_queue="q")
    with pytest.raises(ValueError, match="fallback queue"):
        IVR(PROMPTS, DefaultRouter("q"), fallback_queue="q 1,2")


def test_concurrent_callers_get_their_own_choices(server: FastAGIServer) -> None:
    results: dict[str, str] = {}

    def call(digit: str) -> None:
        t = FakeAsterisk(server.address, keys={"id/welcome": digit}, uniqueid=f"u{digit}").run()
        results[digit] = t.variables["EMERGENCY_TYPE"]

    threads = [threading.Thread(target=call, args=(d,)) for d in "12345" * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert results == {"1": "police", "2": "medical", "3": "fire", "4": "sar", "5": "disaster"}


def test_call_variables_are_read_in_one_round_trip() -> None:
    router = RecordingRouter(RouteDecision("q-jakarta", {}))
    headers = {"${PJSIP_HEADER(read,P-Asserted-Identity)}": "<sip:+6281234567890@ims>",
               "${TRUNK_TRUSTED}": "yes"}  # fmt: skip
    with serving({"ivr": ivr(router)}) as server:
        t = FakeAsterisk(server.address, variables=headers, keys={"id/welcome": "2"}).run()

    reads = [c for c in t.commands if c.startswith("GET FULL VARIABLE")]
    assert len(reads) == 2, reads  # the linkedid, then every call variable at once
    session_vars, _ = router.calls[0]
    assert session_vars["P-Asserted-Identity"] == "<sip:+6281234567890@ims>"
    assert session_vars["trunk_trusted"] == "yes" and session_vars["Privacy"] == ""


def test_a_header_holding_the_separator_is_read_one_by_one() -> None:
    router = RecordingRouter(RouteDecision("q-jakarta", {}))
    forged = "<sip:+62811@ims>\x1f510100A010000001"
    headers = {"${PJSIP_HEADER(read,P-Asserted-Identity)}": forged}
    with serving({"ivr": ivr(router)}) as server:
        t = FakeAsterisk(server.address, variables=headers, keys={"id/welcome": "2"}).run()

    reads = [c for c in t.commands if c.startswith("GET FULL VARIABLE")]
    assert len(reads) == 2 + len(CALL_VARIABLES)
    session_vars, _ = router.calls[0]
    assert session_vars["P-Asserted-Identity"] == forged
    assert session_vars["Remote-Party-ID"] == ""
