"""Rendering operators' phones behind the edge's registrar (pure rendering, no process)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telephony.config import ConfigError, load
from telephony.edge import phones
from telephony.edge.render import COUNTERS, EdgeLayout, render
from telephony.operators.roster import ha1
from telephony.pbx.layout import Layout
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.render import render_sandbox

TLS = ("asterisk.tls_port=5061", "asterisk.tls_cert_file=/k/c.pem",
       "asterisk.tls_key_file=/k/k.pem")


def _overrides(tmp_path: Path, *extra: str) -> list[str]:
    roster = tmp_path / "operators.toml"
    roster.write_text('[[operator]]\nid = "op1"\nregency = "35.73"\npassword = "s3cret-op1"\n')
    return [f"operators.file={roster}", f"asterisk.runtime_dir={tmp_path / 'ast'}", *extra]


def _files(tmp_path: Path, *extra: str) -> tuple[dict[Path, str], EdgeLayout, str]:
    config = load(None, env={}, overrides=_overrides(tmp_path, *extra))
    layout = EdgeLayout(tmp_path / "kamailio")
    install = AsteriskInstall(("asterisk",), Path("/mods"), Path("/share"), "Asterisk 22.1", "t")
    pjsip = render_sandbox(config, install, Layout(tmp_path / "ast"))["pjsip_112.conf"]
    return render(config, layout), layout, pjsip


def test_the_registrar_holds_the_rosters_ha1_and_declares_its_counters(tmp_path: Path) -> None:
    files, layout, _ = _files(tmp_path, "edge.enabled=true", *TLS)
    cfg = files[layout.cfg]
    assert files[layout.subscribers].splitlines()[1] == f"1:op1:112:{ha1('op1', 's3cret-op1')}"
    assert "s3cret" not in cfg
    declared = re.findall(r'modparam\("statistics", "variable", "(\w+)"\)', cfg)
    updated = set(re.findall(r'update_stat\("(\w+)"', cfg))
    assert declared == [*COUNTERS, *phones.COUNTERS] and updated == set(declared)
    assert "listen=tls:127.0.0.1:5071" in cfg
    assert 'modparam("tls", "certificate", "/k/c.pem")' in cfg
    assert "#!define REQUIRE_TLS" not in cfg


def test_require_tls_is_enforced_by_the_edge(tmp_path: Path) -> None:
    files, layout, pjsip = _files(tmp_path, "edge.enabled=true", *TLS, "operators.require_tls=true")
    assert "#!define REQUIRE_TLS" in files[layout.cfg]
    # Asterisk reaches the phone through the edge over loopback, with SRTP still mandatory.
    assert "transport = transport-tls" not in pjsip
    assert "media_encryption_optimistic = no" in pjsip


def test_asterisk_reaches_operators_through_the_edge_and_takes_them_from_it_only(
    tmp_path: Path,
) -> None:
    _, _, pjsip = _files(tmp_path, "edge.enabled=true")
    assert "contact = sip:op1@127.0.0.10:5060" in pjsip and "max_contacts = 0" in pjsip
    operator = pjsip[pjsip.index("[op1]"):pjsip.index("[op1-auth]")]
    assert "permit = 127.0.0.10/255.255.255.255" in operator
    assert "permit = 192.168.0.0/255.255.0.0" not in operator


@pytest.mark.parametrize("mode", [("edge.enabled=false", "location.pidf_lo=false"),
                                  ("edge.enabled=true", "edge.registrar=false")],
                         ids=["direct", "edge-without-registrar"])
def test_without_the_registrar_phones_register_at_asterisk_as_before(
    tmp_path: Path, mode: tuple[str, ...]
) -> None:
    files, layout, pjsip = _files(tmp_path, *mode, *TLS, "operators.require_tls=true")
    assert layout.subscribers not in files and "registrar.so" not in files[layout.cfg]
    assert "max_contacts = 1" in pjsip and "contact = sip:op1@" not in pjsip
    assert "transport = transport-tls" in pjsip and "permit = 192.168.0.0/255.255.0.0" in pjsip


def test_sdes_keys_may_not_cross_a_link_to_asterisk_that_leaves_the_host(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SDES"):
        load(None, env={}, overrides=_overrides(
            tmp_path, "edge.enabled=true", *TLS, "edge.inside_address=10.0.0.10"))
    load(None, env={}, overrides=_overrides(
        tmp_path, "edge.enabled=true", "edge.registrar=false", *TLS,
        "edge.inside_address=10.0.0.10"))
