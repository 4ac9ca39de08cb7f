from __future__ import annotations

import pytest

from telephony.location.identity import (
    IdentitySource,
    IdentityState,
    parse_identity,
    parse_privacy,
    to_e164,
)


@pytest.mark.parametrize(
    "number",
    ["081234567890", "6281234567890", "+6281234567890", "+62 812-3456-7890"],
)
def test_indonesian_forms_of_one_number_agree(number: str) -> None:
    assert to_e164(number.replace(" ", "").replace("-", "")) == "+6281234567890"


def test_national_landline_and_phone_context() -> None:
    assert to_e164("0315551234") == "+62315551234"
    assert to_e164("315551234", phone_context="+62") == "+62315551234"
    assert to_e164("6505550100", phone_context="+1") == "+16505550100"


@pytest.mark.parametrize("number", ["510101234567890", "112", "1500", "0", "+", "", "00112"])
def test_non_numbers_are_refused(number: str) -> None:
    assert to_e164(number) is None


def test_pai_preferred_over_rpid_and_from() -> None:
    identity = parse_identity(
        p_asserted_identity=(
            "<sip:+6281234567890@ims.mnc010.mcc510.3gppnetwork.org;user=phone>, "
            "<tel:+6281234567890>"
        ),
        remote_party_id='"Budi" <sip:+6285600000001@10.0.0.1>;party=calling;privacy=off',
        from_header='"0856 0000 0002" <sip:085600000002@10.20.30.40;user=phone>;tag=as5f3c1a',
    )
    assert identity.state is IdentityState.AVAILABLE
    assert identity.source is IdentitySource.P_ASSERTED_IDENTITY
    assert identity.e164 == "+6281234567890"
    assert identity.raw.startswith("<sip:+6281234567890@")


def test_falls_back_to_rpid_then_from() -> None:
    rpid = parse_identity(
        remote_party_id='"Budi" <sip:6285600000001@10.0.0.1;user=phone>;party=calling;screen=yes',
        from_header="<sip:085600000002@10.20.30.40>;tag=1",
    )
    assert (rpid.source, rpid.e164, rpid.display_name) == (
        IdentitySource.REMOTE_PARTY_ID, "+6285600000001", "Budi")
    from_only = parse_identity(
        from_header='"Siti" <sip:0856-0000-0002@10.20.30.40;user=phone>;tag=as5f3c1a'
    )
    assert (from_only.source, from_only.e164, from_only.display_name) == (
        IdentitySource.FROM, "+6285600000002", "Siti")


def test_tel_uri_with_params_and_user_params() -> None:
    identity = parse_identity("<tel:0812-3456-7890;phone-context=+62;verstat=TN-Validation-Passed>")
    assert identity.e164 == "+6281234567890"
    npdi = parse_identity("<sip:+6281234567890;npdi;rn=+6281200000000@ims.example;user=phone>")
    assert npdi.e164 == "+6281234567890"


def test_privacy_id_is_withheld_but_number_recorded() -> None:
    identity = parse_identity(
        p_asserted_identity="<sip:+6281234567890@ims.example;user=phone>",
        from_header='"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1928301774',
        privacy="id;critical",
    )
    assert identity.state is IdentityState.WITHHELD
    assert identity.e164 == "+6281234567890"
    assert identity.privacy == ("id", "critical")


def test_rpid_privacy_full_is_withheld() -> None:
    identity = parse_identity(
        remote_party_id="<sip:+6281234567890@10.0.0.1>;party=calling;privacy=full;screen=yes"
    )
    assert identity.state is IdentityState.WITHHELD
    assert identity.e164 == "+6281234567890"


def test_anonymous_from_without_asserted_identity() -> None:
    identity = parse_identity(
        from_header='"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1928301774'
    )
    assert identity.state is IdentityState.WITHHELD
    assert identity.e164 is None
    assert identity.source is IdentitySource.FROM


@pytest.mark.parametrize(
    "from_header",
    [
        "",
        "<sip:358240051111110@sos.invalid>;tag=1",
        "<sip:unavailable@10.1.2.3>;tag=1",
        "<urn:gsma:imei:35824005-111111-0>",
        "<sip:112@10.1.2.3>;tag=1",
    ],
)
def test_sim_less_caller_has_no_number(from_header: str) -> None:
    identity = parse_identity(from_header=from_header)
    assert identity.state is IdentityState.NO_NUMBER
    assert identity.e164 is None


def test_short_code_is_recorded_but_not_a_number() -> None:
    identity = parse_identity(from_header="<sip:112@10.1.2.3>;tag=1")
    assert identity.number == "112"
    assert identity.raw == "<sip:112@10.1.2.3>;tag=1"


def test_display_name_with_specials_and_bytes_input() -> None:
    identity = parse_identity(
        from_header=b'"Budi, \\"Pak\\" <x>" <sip:+6281234567890@h>;tag=9',
    )
    assert identity.display_name == 'Budi, "Pak" <x>'
    assert identity.e164 == "+6281234567890"


def test_parse_privacy_values() -> None:
    assert parse_privacy("id; header ,user") == ("id", "header", "user")
    assert parse_privacy("none") == ("none",)
    assert parse_identity("<sip:+6281234567890@h>", privacy="none").state is (
        IdentityState.AVAILABLE
    )
