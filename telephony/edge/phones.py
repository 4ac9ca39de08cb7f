"""What the edge's registrar needs to render: the operators' credentials and TLS files.

The credentials are the roster's HA1 digests (realm 112), the same ones Asterisk's
`md5_cred` holds, written as a db_text table for Kamailio's auth_db: one source of truth,
no password anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from telephony.config import Config, resolve_path
from telephony.location import load_regions
from telephony.operators.roster import REALM, Operator, load_roster
from telephony.pbx.render import EDGE_PHONE_ANSWER_MS

# Kamailio's own statistics about phones, declared only when the registrar is rendered.
COUNTERS = ("phone_auth_failed", "phone_insecure")
# The reason phrases of the edge's own answers to Asterisk's qualify of a phone (kamailio.cfg
# route[NO_PHONE], failure_route[PHONE_QUALIFY]): not registered (480), registered but
# silent (408), answered with something other than a 2xx (200).
QUALIFY_REASONS = {
    "unregistered": "No Phone Registered",
    "silent": "Phone Silent",
    "answered": "Phone Answered",
}
# The longest registration the edge's registrar grants (registrar max_expires): phones
# refresh at least this often, so after an edge restart, which forgets them, they are all
# back within it.
MAX_EXPIRES_S = 120
TABLE = "subscriber"
# db_text's header line: column(type) ..., then one row per operator, ':'-separated.
COLUMNS = "id(int,auto) username(string) domain(string) ha1(string)"


def subscriber_table(operators: Sequence[Operator]) -> str:
    """auth_db's subscriber table in db_text's format. Ids, realm and HA1 carry no ':'."""
    rows = [f"{n}:{op.id}:{REALM}:{op.ha1}" for n, op in enumerate(operators, start=1)]
    return "\n".join([COLUMNS, *rows]) + "\n"


def operators(config: Config) -> tuple[Operator, ...]:
    regions = load_regions(resolve_path(config.location.regions_file))
    return load_roster(resolve_path(config.operators.file), regions)


def template_values(config: Config, db_dir: Path) -> dict[str, object] | None:
    """The registrar's part of kamailio.cfg, or None when phones register at Asterisk."""
    if not config.edge.phones_via_edge:
        return None
    ast = config.asterisk
    return {
        "realm": REALM,
        "db_dir": db_dir,
        "tls": bool(ast.tls_port),
        "cert_file": resolve_path(ast.tls_cert_file) if ast.tls_cert_file else "",
        "key_file": resolve_path(ast.tls_key_file) if ast.tls_key_file else "",
        "require_tls": config.operators.require_tls,
        "counters": COUNTERS,
        "answer_ms": EDGE_PHONE_ANSWER_MS,
        "reasons": QUALIFY_REASONS,
        "max_expires_s": MAX_EXPIRES_S,
    }


def registrar_uris(config: Config) -> str:
    """Where phones register at the edge, as `asterisk up` prints it."""
    edge = config.edge
    tls = f"sip:{edge.bind}:{edge.phone_tls_port};transport=tls (TLS, SRTP, at the edge)"
    if config.operators.require_tls:
        return tls
    udp = f"sip:{edge.bind}:{edge.phone_port} (UDP, at the edge)"
    return f"{udp} or {tls}" if config.asterisk.tls_port else udp
