"""Issue 8: the TLS, SRTP and AMI-off-loopback keys, their rules, what they render, and how
the login check recognises a phone on TLS."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telephony.ami import Frame
from telephony.config import ConfigError, is_loopback, load
from telephony.operators.presence import tls_contacts
from telephony.operators.roster import Operator
from telephony.pbx.layout import Layout
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.render import render_sandbox

TLS = ("asterisk.tls_cert_file=/etc/asterisk/keys/112.pem",
       "asterisk.tls_key_file=/etc/asterisk/keys/112.key")
AMI_OFF_LOOPBACK = ("asterisk.ami_bind=10.20.0.5", "asterisk.ami_tls_port=5039", *TLS,
                    "ami.permit=10.20.0.9/32,10.30.0.0/24")


def _load(*overrides: str) -> None:
    load(None, env={}, overrides=overrides)


def _render(tmp_path: Path, *overrides: str) -> dict[str, str]:
    config = load(None, env={}, overrides=[f"asterisk.runtime_dir={tmp_path}", *overrides])
    install = AsteriskInstall(("asterisk",), Path("/mods"), Path("/share"), "Asterisk 22.1", "t")
    return render_sandbox(config, install, Layout(tmp_path))


def _operators_part(pjsip_112: str) -> str:
    return pjsip_112[pjsip_112.index("; Operators' softphones"):]


def test_ami_off_loopback_without_tls_or_acl_is_refused_naming_every_missing_key() -> None:
    with pytest.raises(ConfigError) as err:
        _load("asterisk.ami_bind=10.20.0.5")
    message = str(err.value)
    assert "asterisk.ami_bind = '10.20.0.5' is not a loopback address" in message
    assert message.endswith("Missing: asterisk.ami_tls_port, asterisk.tls_cert_file, "
                            "asterisk.tls_key_file, ami.permit")


def test_ami_off_loopback_with_tls_but_no_acl_names_only_the_acl() -> None:
    with pytest.raises(ConfigError, match=r"Missing: ami\.permit$"):
        _load("asterisk.ami_bind=10.20.0.5", "asterisk.ami_tls_port=5039", *TLS)


def test_ami_tls_port_without_certificate_names_the_files() -> None:
    with pytest.raises(ConfigError, match=r"Missing: asterisk\.tls_cert_file, "
                                          r"asterisk\.tls_key_file$"):
        _load("asterisk.ami_bind=10.20.0.5", "asterisk.ami_tls_port=5039", "ami.permit=10.0.0.9")
    with pytest.raises(ConfigError, match=r"asterisk\.ami_tls_port = 5039 needs "
                                          r"asterisk\.tls_cert_file and asterisk\.tls_key_file"):
        _load("asterisk.ami_tls_port=5039")


def test_ami_off_loopback_with_tls_and_acl_loads() -> None:
    config = load(None, env={}, overrides=AMI_OFF_LOOPBACK)
    assert config.ami.permit == ("10.20.0.9/32", "10.30.0.0/24")


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_ami_on_every_interface_is_refused(bind: str) -> None:
    with pytest.raises(ConfigError, match="listens on every interface"):
        _load(f"asterisk.ami_bind={bind}", *AMI_OFF_LOOPBACK[1:])


@pytest.mark.parametrize(
    ("permit", "message"),
    [("0.0.0.0/0", "admits every address"), ("::/0", "admits every address"),
     ("10.0.0.300", "is not an address or network")],
)
def test_bad_acl_entries_are_refused(permit: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"command line --set: ami\.permit: .*{message}"):
        _load(f"ami.permit={permit}")


def test_acl_from_file_environment_and_command_line(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[ami]\npermit = ["10.1.0.0/16"]\n')
    assert load(path, env={}).ami.permit == ("10.1.0.0/16",)
    env = {"TELEPHONY_AMI_PERMIT": "10.2.0.1, 10.3.0.0/24"}
    assert load(path, env=env).ami.permit == ("10.2.0.1", "10.3.0.0/24")
    assert load(path, env=env, overrides=["ami.permit="]).ami.permit == ()
    path.write_text("[ami]\npermit = [1]\n")
    with pytest.raises(ConfigError, match="expected a list of strings"):
        load(path, env={})


def test_require_tls_needs_the_tls_transport() -> None:
    with pytest.raises(ConfigError, match=r"operators\.require_tls = true needs the TLS "
                                          r"transport: set asterisk\.tls_port"):
        _load("operators.require_tls=true")
    with pytest.raises(ConfigError, match=r"tls_port = 5061 needs asterisk\.tls_key_file"):
        _load("asterisk.tls_port=5061", "asterisk.tls_cert_file=/c.pem")
    with pytest.raises(ConfigError, match=r"asterisk\.tls_port: expected 0 \(off\) or a port"):
        _load("asterisk.tls_port=70000")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.0.1", True), ("::1", True), ("localhost", True),
     ("10.0.0.1", False), ("ami.example", False), ("0.0.0.0", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_without_tls_nothing_changes(tmp_path: Path) -> None:
    files = _render(tmp_path)
    assert "transport-tls" not in files["pjsip.conf"]
    assert "media_encryption" not in files["pjsip_112.conf"]
    assert "tlsenable" not in files["manager.conf"]
    assert "bindaddr = 127.0.0.1" in files["manager.conf"]


def test_tls_renders_the_transport_and_optional_srtp(tmp_path: Path) -> None:
    files = _render(tmp_path, "asterisk.tls_port=5061", "asterisk.tls_cert_file=keys/c.pem",
                    "asterisk.tls_key_file=/k.pem")
    transport = files["pjsip.conf"].split("[transport-tls]", 1)[1]
    assert "protocol = tls" in transport and "method = tlsv1_2" in transport
    assert "bind = 127.0.0.1:5061" in transport
    # Asterisk does not run from our working directory: the paths are absolute.
    assert f"cert_file = {Path.cwd() / 'keys/c.pem'}" in transport
    assert "priv_key_file = /k.pem" in transport
    operators = _operators_part(files["pjsip_112.conf"])
    endpoints = operators.count("type = endpoint")
    assert endpoints > 0
    assert operators.count("media_encryption = sdes") == endpoints
    assert operators.count("media_encryption_optimistic = yes") == endpoints
    assert "transport = transport-tls" not in operators


def test_require_tls_binds_operators_to_tls_and_mandatory_srtp(tmp_path: Path) -> None:
    # Phones registering at Asterisk (direct mode); behind the edge's registrar the edge
    # enforces the rule: test_edge_phones.test_require_tls_is_enforced_by_the_edge.
    files = _render(tmp_path, "edge.enabled=false", "location.pidf_lo=false",
                    "asterisk.tls_port=5061", *TLS, "operators.require_tls=true")
    pjsip_112 = files["pjsip_112.conf"]
    operators = _operators_part(pjsip_112)
    endpoints = operators.count("type = endpoint")
    assert operators.count("media_encryption_optimistic = no") == endpoints
    assert operators.count("transport = transport-tls") == endpoints
    # The trunk keeps its UDP transport and plain RTP: the mobile network has no TLS.
    trunk = pjsip_112[: pjsip_112.index("; Operators' softphones")]
    assert "transport" not in trunk and "media_encryption" not in trunk


def test_ami_off_loopback_renders_tls_listener_acl_and_keeps_plain_ami_on_loopback(
    tmp_path: Path,
) -> None:
    files = _render(tmp_path, *AMI_OFF_LOOPBACK, "asterisk.ami_port=5038")
    manager = files["manager.conf"]
    assert "bindaddr = 127.0.0.1\nport = 5038" in manager
    assert "tlsenable = yes" in manager and "tlsbindaddr = 10.20.0.5:5039" in manager
    assert "tlscertfile = /etc/asterisk/keys/112.pem" in manager
    assert "tlsprivatekey = /etc/asterisk/keys/112.key" in manager
    acl = re.findall(r"^(deny|permit) = (.*)$", files["manager_112.conf"], re.M)
    assert acl == [("deny", "0.0.0.0/0.0.0.0"), ("deny", "::/0"),
                   ("permit", "127.0.0.1/255.255.255.255"),
                   ("permit", "10.20.0.9/255.255.255.255"),
                   ("permit", "10.30.0.0/255.255.255.0")]


def test_ipv6_ami_bind_is_bracketed(tmp_path: Path) -> None:
    files = _render(tmp_path, "asterisk.ami_bind=fd00::5", *AMI_OFF_LOOPBACK[1:],
                    "ami.permit=fd00::/64")
    assert "tlsbindaddr = [fd00::5]:5039" in files["manager.conf"]
    assert "permit = fd00::/64" in files["manager_112.conf"]


class _Contacts:
    """Answers Getvar(PJSIP_DIAL_CONTACTS(...)) as Asterisk does, from a fixed value."""

    def __init__(self, value: str) -> None:
        self.value = value

    def send_action(self, name: str, **fields: str) -> Frame:
        assert (name, fields) == ("Getvar", {"Variable": "PJSIP_DIAL_CONTACTS(op1)"})
        return Frame([("Response", "Success"), ("Value", self.value)])


@pytest.mark.parametrize(
    ("value", "secure"),
    [("PJSIP/op1/sip:op1@10.0.0.7:40211;transport=TLS", True),
     ("PJSIP/op1/sips:op1@10.0.0.7:5061", True),
     ("PJSIP/op1/sip:op1@10.0.0.7:5062&PJSIP/op1/sip:op1@10.0.0.8:41000;transport=tls", True),
     ("PJSIP/op1/sip:op1@10.0.0.7:5062", False),
     ("PJSIP/op1/sip:op1@10.0.0.7:5062;transport=TCP", False),
     ("", False)],
)
def test_only_contacts_reached_over_tls_count(value: str, secure: bool) -> None:
    op = Operator(id="op1", name="op1", regency="35.73", ha1="0" * 32)
    assert bool(tls_contacts(_Contacts(value), op)) is secure  # type: ignore[arg-type]
