"""The AML parsers (pure): both transports, the range checks, and a fuzz of each."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.aml.fix import Fix, Method, Reason, Rejected
from telephony.aml.form import parse_form
from telephony.aml.sms import parse_sms

NOW = datetime(2026, 12, 1, 23, 0, tzinfo=UTC).timestamp()
AGE, FUTURE = 3600.0, 300.0
TOP = "20261201225950"  # 10 s before NOW


def form(**fields: str) -> bytes:
    base = {"v": "1", "emergency_number": "112", "source": "call",
            "time": str(int(NOW * 1000) - 5000), "location_latitude": "-7.8712",
            "location_longitude": "112.5265", "location_time": str(int(NOW * 1000) - 2000),
            "location_accuracy": "12.5", "location_source": "gps",
            "location_confidence": "0.6827", "device_number": "+6281390000001",
            "device_imei": "355458061005220"}
    base.update(fields)
    return urlencode({k: v for k, v in base.items() if v != "-"}).encode()


def sms(**fields: str) -> str:
    parts = {"lt": "-7.87120", "lg": "+112.52650", "rd": "9", "top": TOP, "lc": "68",
             "pm": "G", "si": "510100000000000", "ei": "355458061005220", "mcc": "510",
             "mnc": "10"}
    parts.update(fields)
    body = 'A"ML=1;' + ";".join(f"{k}={v}" for k, v in parts.items() if v != "-")
    return f"{body};ml={len(body) + 4 + len(str(len(body)))}"


def test_form_gives_the_fix() -> None:
    fix = parse_form(form(), NOW, AGE, FUTURE)
    assert isinstance(fix, Fix)
    assert (fix.transport, fix.number, fix.lat, fix.lon) == ("https", "+6281390000001",
                                                             -7.8712, 112.5265)
    assert fix.accuracy_m == 12.5 and fix.method is Method.GNSS
    assert fix.fixed_at == pytest.approx(NOW - 2)
    assert fix.confidence == pytest.approx(68.27)
    assert fix.emergency_number == "112"


def test_form_without_location_time_takes_the_call_time() -> None:
    fix = parse_form(form(location_time="-"), NOW, AGE, FUTURE)
    assert isinstance(fix, Fix) and fix.fixed_at == pytest.approx(NOW - 5)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"location_latitude": "-91"}, Reason.LATITUDE),
    ({"location_longitude": "180.5"}, Reason.LONGITUDE),
    ({"location_accuracy": "0"}, Reason.ACCURACY),
    ({"location_accuracy": "200000"}, Reason.ACCURACY),
    ({"location_accuracy": "-3"}, Reason.ACCURACY),
    ({"location_time": str(int((NOW - 7200) * 1000))}, Reason.TIME),
    ({"location_time": str(int((NOW + 600) * 1000))}, Reason.TIME),
    ({"location_latitude": "nan"}, Reason.MALFORMED),
    ({"location_latitude": "-", "location_longitude": "-"}, Reason.NO_LOCATION),
    ({"v": "9"}, Reason.VERSION),
])
def test_form_out_of_range_is_rejected_with_the_reason(fields: dict[str, str],
                                                       reason: Reason) -> None:
    result = parse_form(form(**fields), NOW, AGE, FUTURE)
    assert isinstance(result, Rejected) and result.reason is reason


def test_form_of_nothing_useful() -> None:
    assert parse_form(b"", NOW, AGE, FUTURE) == Rejected(Reason.EMPTY)
    assert parse_form(b"hello=1", NOW, AGE, FUTURE) == Rejected(Reason.NO_LOCATION)
    result = parse_form(b"\xff\xfe", NOW, AGE, FUTURE)
    assert isinstance(result, Rejected) and result.reason is Reason.MALFORMED


def test_sms_gives_the_fix() -> None:
    fix = parse_sms(sms(), "081390000002", NOW, AGE, FUTURE)
    assert isinstance(fix, Fix)
    assert (fix.transport, fix.number, fix.lat, fix.lon) == ("sms", "+6281390000002",
                                                             -7.8712, 112.5265)
    assert (fix.accuracy_m, fix.method, fix.confidence) == (9.0, Method.GNSS, 68.0)
    assert fix.fixed_at == NOW - 10
    assert (fix.imei, fix.mcc, fix.mnc) == ("355458061005220", "510", "10")


def test_sms_with_the_optional_fields_missing() -> None:
    text = 'A"ML=1;lt=-7.87120;lg=+112.52650;rd=25;top=' + TOP
    fix = parse_sms(text, "+6281390000003", NOW, AGE, FUTURE)
    assert isinstance(fix, Fix)
    assert (fix.method, fix.confidence, fix.imei, fix.mcc) == (Method.UNKNOWN, None, "", "")


def test_sms_published_examples() -> None:
    # developers.google.com/android/els/reference/sms-spec (ELS V1 = ETSI AML).
    located = ('A"ML=1;lt=+51.53321;lg=-0.12601;rd=14;top=20220131171748;lc=68;pm=W;'
               "si=234159000000000;ei=123456789012345;mcc=234;mnc=15;ml=126")
    at = datetime(2022, 1, 31, 17, 18, tzinfo=UTC).timestamp()
    fix = parse_sms(located, "", at, AGE, FUTURE)
    assert isinstance(fix, Fix) and fix.method is Method.WIFI and fix.number == ""
    empty = ('A"ML=1;lt=+00.00000;lg=+000.00000;rd=N;top=20220131173734;lc=0;pm=N;'
             "si=234159000000000;ei=123456789012345;mcc=234;mnc=15;ml=127")
    assert parse_sms(empty, "", at, AGE, FUTURE) == Rejected(Reason.NO_LOCATION)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"lt": "+95.0"}, Reason.LATITUDE),
    ({"lg": "-181.0"}, Reason.LONGITUDE),
    ({"rd": "0"}, Reason.ACCURACY),
    ({"rd": "abc"}, Reason.ACCURACY),
    ({"top": "20261201200000"}, Reason.TIME),
    ({"top": "20261399000000"}, Reason.TIME),
    ({"top": "-"}, Reason.MALFORMED),
])
def test_sms_out_of_range_is_rejected_with_the_reason(fields: dict[str, str],
                                                      reason: Reason) -> None:
    result = parse_sms(sms(**fields), "", NOW, AGE, FUTURE)
    assert isinstance(result, Rejected) and result.reason is reason


def test_sms_truncated_or_foreign() -> None:
    full = sms()
    cut = full[:full.index(";mcc=")] + full[full.index(";ml="):]  # lost a part on the way
    assert parse_sms(cut, "", NOW, AGE, FUTURE).reason is Reason.LENGTH  # type: ignore[union-attr]
    assert parse_sms("hello", "", NOW, AGE, FUTURE) == Rejected(Reason.NOT_AML)
    assert parse_sms('A"ML=2;lt=1', "", NOW, AGE, FUTURE).reason is Reason.VERSION  # type: ignore[union-attr]


def _typed(result: Fix | Rejected) -> None:
    assert isinstance(result, Fix | Rejected)
    if isinstance(result, Rejected):
        assert isinstance(result.reason, Reason)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_form_bytes(body: bytes) -> None:
    _typed(parse_form(body, NOW, AGE, FUTURE))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "location_latitude", "location_longitude",
                                        "location_accuracy", "location_time", "time",
                                        "location_source", "location_confidence",
                                        "device_number", "emergency_number"]),
                       st.text(max_size=24)))
def test_fuzz_form_fields(fields: dict[str, str]) -> None:
    _typed(parse_form(urlencode(fields).encode(), NOW, AGE, FUTURE))


_SMS_PART = st.tuples(st.sampled_from(["lt", "lg", "rd", "top", "lc", "pm", "ml", "x", ""]),
                      st.text(alphabet="+-.0123456789NGWC=;", max_size=16))


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=400), st.text(max_size=20))
def test_fuzz_sms_text(text: str, originator: str) -> None:
    _typed(parse_sms(text, originator, NOW, AGE, FUTURE))


@settings(max_examples=400, deadline=None)
@given(st.lists(_SMS_PART, max_size=12))
def test_fuzz_sms_attributes(parts: list[tuple[str, str]]) -> None:
    text = 'A"ML=1;' + ";".join(f"{k}={v}" for k, v in parts)
    _typed(parse_sms(text, "+6281390000004", NOW, AGE, FUTURE))
