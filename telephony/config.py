"""Typed configuration with one precedence: defaults < TOML file < TELEPHONY_* env < CLI flags.

The dataclass defaults below are the embedded defaults; `config/telephony.toml` documents
every key with the same values. Every value is checked where it enters, and a bad one
raises ConfigError naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telephony import values
from telephony.errors import ConfigurationError
from telephony.resources import located

ENV_PREFIX = "TELEPHONY_"
DEFAULT_CONFIG_FILE = Path("config/telephony.toml")


class ConfigError(ConfigurationError):
    """A configuration value is missing, of the wrong type or out of range."""


Check = Callable[[Any], str | None]


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "expected a port from 1 to 65535"


def _port_or_off(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "expected 0 (off) or a port from 1 to 65535"


def _positive(value: float) -> str | None:
    return None if value > 0 else "expected a number greater than 0"


def _networks(value: tuple[str, ...]) -> str | None:
    for text in value:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return f"{text!r} is not an address or network (CIDR, e.g. 10.20.0.0/24)"
        if network.prefixlen == 0:
            return f"{text!r} admits every address; list only the hosts that need AMI"
    return None


def _one_of(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in allowed else f"expected one of {', '.join(allowed)}"

    return check


def _checked(default: Any, check: Check | None = None) -> Any:
    return field(default=default, metadata={"check": check})


@dataclass(frozen=True)
class ServiceConfig:
    log_level: str = _checked("info", _one_of("debug", "info", "warning", "error"))
    log_format: str = _checked("auto", _one_of("auto", "json", "console"))


@dataclass(frozen=True)
class AsteriskConfig:
    # Every value below that Asterisk's config receives is checked by telephony.values.
    runtime_dir: str = _checked("var/asterisk", values.path)
    cache_dir: str = _checked("~/.cache/telephony", values.path)
    binary: str = _checked("auto", values.path)
    sip_bind: str = _checked("127.0.0.1", values.address)
    # 5080, not 5060: behind the edge (the default) the trunk-facing 5060 is Kamailio's.
    sip_port: int = _checked(5080, _port)
    ami_bind: str = _checked("127.0.0.1", values.address)
    ami_port: int = _checked(5038, _port)
    # AMI over TLS on ami_bind; 0: none. The only way AMI may leave loopback.
    ami_tls_port: int = _checked(0, _port_or_off)
    # SIP over TLS for operators' phones on sip_bind; 0: no TLS transport.
    tls_port: int = _checked(0, _port_or_off)
    tls_cert_file: str = _checked("", values.path)
    tls_key_file: str = _checked("", values.path)
    # What telephony's AMI client verifies Asterisk's certificate against; "": system CAs.
    tls_ca_file: str = ""
    trunk_address: str = _checked("127.0.0.2", values.network)
    trunks_file: str = "config/trunks.toml"
    timer_t1: int = _checked(500, _positive)
    boot_timeout_s: float = _checked(60.0, _positive)


@dataclass(frozen=True)
class AGIConfig:
    bind: str = _checked("127.0.0.1", values.address)
    port: int = _checked(4573, _port)
    session_budget_s: float = _checked(11.0, _positive)
    dialplan_guard_s: int = _checked(12, _positive)
    read_timeout_s: float = _checked(10.0, _positive)
    max_sessions: int = _checked(400, _positive)


@dataclass(frozen=True)
class AMIConfig:
    username: str = _checked("telephony", values.token)
    secret: str = _checked("", values.secret)
    keepalive_s: float = _checked(5.0, _positive)
    # Networks allowed to log in besides loopback; required when AMI leaves loopback.
    permit: tuple[str, ...] = _checked((), _networks)


@dataclass(frozen=True)
class IVRConfig:
    prompts_dir: str = _checked("ivr_prompts", values.path)
    default_queue: str = _checked("prov-35", values.queue)


@dataclass(frozen=True)
class LocationConfig:
    regions_file: str = "config/regions.toml"
    trunk_trusted: bool = True
    # On: the edge strips what would crash Asterisk 22.10.1 (a PIDF-LO without
    # <usage-rules>). Direct mode (edge.enabled = false) refuses it on (_check_pidf_lo).
    pidf_lo: bool = True


@dataclass(frozen=True)
class AuditConfig:
    database_url: str = "sqlite:///var/telephony.db"
    spool_path: str = "var/audit-spool.jsonl"
    checkpoint_path: str = "var/audit-checkpoints.jsonl"
    checkpoint_key: str = ""
    checkpoint_key_file: str = "var/audit-hmac.key"
    checkpoint_interval_s: float = _checked(60.0, _positive)
    cel_path: str = ""
    quarantine_path: str = "var/audit-quarantine.jsonl"
    queue_size: int = _checked(10_000, lambda v: None if v >= 1 else "expected 1 or more")
    overflow_path: str = "var/audit-overflow.jsonl"


@dataclass(frozen=True)
class OperatorsConfig:
    file: str = "config/operators.toml"
    overflow_s: int = _checked(20, _positive)
    wrapup_s: int = _checked(5, _positive)
    # Feature code prefix for handing a call over to another regency: *8 + regency digits.
    handover_prefix: str = _checked("*8", values.dial_code)
    # Operators' phones must use TLS and SRTP; needs asterisk.tls_port.
    require_tls: bool = False


@dataclass(frozen=True)
class CallbacksConfig:
    # The number a called-back citizen sees: the centre's own.
    centre_number: str = _checked("112", values.number)
    centre_name: str = _checked("112 Jawa Timur", values.name)
    # Where calls to citizens leave, e.g. sip:127.0.0.2:5060 (the network's SIP side).
    trunk_contact: str = _checked("", values.sip_uri)
    # Repeated abandoned calls from one number within this window join one callback item.
    merge_window_s: int = _checked(1800, _positive)
    # A caller who hangs up before the welcome has been heard is not called back.
    min_ivr_s: float = _checked(3.0, _positive)


@dataclass(frozen=True)
class RecordingConfig:
    enabled: bool = True
    directory: str = _checked("var/recordings", values.path)
    # 0 keeps recordings forever.
    retention_days: int = _checked(90, lambda v: None if v >= 0 else "expected 0 or more")


@dataclass(frozen=True)
class HealthConfig:
    bind: str = "127.0.0.1"
    port: int = _checked(9112, _port)
    max_audit_lag_s: float = _checked(30.0, _positive)
    max_connections: int = _checked(64, lambda v: None if v >= 1 else "expected 1 or more")
    request_timeout_s: float = _checked(2.0, _positive)


@dataclass(frozen=True)
class EdgeConfig:
    """Kamailio in front of Asterisk (docs/edge.md). Off: trunks reach Asterisk directly."""

    enabled: bool = True
    binary: str = "kamailio"
    runtime_dir: str = "var/kamailio"
    # Production: where `deploy apply` installs kamailio.cfg and its data files (e.g.
    # "/etc/kamailio"), and `edge run` runs them without rendering. Empty: runtime_dir.
    config_dir: str = ""
    # Where trunks send their INVITEs: the only SIP port open to the network.
    bind: str = "127.0.0.1"
    port: int = _checked(5060, _port)
    # Kamailio's own address toward Asterisk: the only source Asterisk accepts trunk calls
    # from in edge mode; it identifies the trunk by the X-Telephony-Trunk header instead.
    inside_address: str = "127.0.0.10"
    inside_port: int = _checked(5060, _port)
    # JSON-RPC over HTTP (statistics, reloads); always on loopback.
    rpc_port: int = _checked(5065, _port)
    # Where Kamailio asks `telephony serve` whether a PIDF-LO is safe for Asterisk.
    validator_port: int = _checked(9113, _port)
    # A cluster only (docs/cluster.md): the dispatcher's probes pass through Kamailio itself
    # on 127.0.0.1 (UDP), which marks them as the default trunk's for Asterisk.
    probe_port: int = _checked(5066, _port)
    max_header_bytes: int = _checked(8192, _positive)
    max_body_bytes: int = _checked(16384, _positive)
    # A foreign source over this many requests per 2 s is blocked for block_s.
    flood_requests: int = _checked(30, _positive)
    block_s: int = _checked(300, _positive)
    # INVITEs per second one trunk address may send before the excess gets 503.
    trunk_rate: int = _checked(200, _positive)
    # Operators' phones register to Kamailio, which Asterisk reaches them through (on when
    # the edge is); off: phones register at Asterisk as in direct mode.
    registrar: bool = True
    # Where phones register, on edge.bind: UDP, and TLS when asterisk.tls_port is set (the
    # phones' certificate, asterisk.tls_cert_file, then serves here).
    phone_port: int = _checked(5070, _port)
    phone_tls_port: int = _checked(5071, _port)

    @property
    def phones_via_edge(self) -> bool:
        return self.enabled and self.registrar


@dataclass(frozen=True)
class ClusterConfig:
    """Several Asterisk nodes behind the edge (docs/cluster.md). No file: one node."""

    # The nodes and each regency's home and backup node (config/cluster.example.toml).
    file: str = "config/cluster.toml"
    # Which node of that file this process serves; its addresses, ports and local files
    # follow from it (telephony.cluster.nodes.node_config). Empty: not a cluster node.
    node: str = _checked("", lambda v: None if v == "" or values.token(v) is None
                         else "expected a node name from cluster.file")


@dataclass(frozen=True)
class ConsoleConfig:
    """`telephony console`, the operators' web console (telephony/console/)."""

    bind: str = "127.0.0.1"
    port: int = _checked(8112, _port)
    # HTTPS for a LAN: both files, or neither (plain HTTP, loopback only).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # Map tiles, e.g. "https://tiles.centre.example/{z}/{x}/{y}.png". Empty: no base map.
    tile_url: str = ""
    tile_attribution: str = ""
    session_hours: float = _checked(12.0, _positive)
    # Failed logins per name (and per client address) within login_window_s, then refused.
    login_attempts: int = _checked(5, _positive)
    login_window_s: float = _checked(300.0, _positive)
    # Where "today" starts on the wallboard and in reports (IANA zone; Jawa Timur is WIB).
    timezone: str = "Asia/Jakarta"


@dataclass(frozen=True)
class MessagesConfig:
    """Major-incident messages (telephony/messages/): spoken after the welcome in an area."""

    # Where publishing writes the spoken files; serve's Asterisk must read the same path.
    sound_dir: str = _checked("var/messages", values.path)
    # Longest a message may play: with the 2.76 s welcome it ends by ~8.8 s, inside the
    # IVR's 10.5 s deadline, so a silent caller is still queued within 12 s.
    max_seconds: float = _checked(6.0, _positive)
    # Longest a message may stay active.
    max_minutes: int = _checked(720, _positive)
    # How often serve re-reads the active messages (a new one plays within this time).
    refresh_s: float = _checked(1.0, _positive)


@dataclass(frozen=True)
class IncidentsConfig:
    """Incidents and hand-offs to agencies (telephony/incidents/, docs/incidents.md)."""

    agencies_file: str = _checked("config/agencies.toml", values.path)
    # A new call is proposed the open incidents within this distance (plus the caller's
    # uncertainty) of its location, changed within link_window_s.
    link_distance_m: float = _checked(3000.0, _positive)
    link_window_s: float = _checked(21600.0, _positive)
    # sendingSystemIdentifier of the exported incidents (EIDO).
    system_id: str = _checked("112.jatim.telephony", values.token)
    # Webhook deliveries: a hard timeout per attempt, then retries from first_s doubling up
    # to max_s; the outbox is scanned every outbox_interval_s (and at once on a dispatch).
    webhook_timeout_s: float = _checked(5.0, _positive)
    retry_first_s: float = _checked(5.0, _positive)
    retry_max_s: float = _checked(300.0, _positive)
    outbox_interval_s: float = _checked(1.0, _positive)
    # CA bundle to verify agencies' HTTPS with; empty: the system's trust store.
    webhook_ca_file: str = _checked("", values.path)
    # Sandbox only: lets a webhook be plain http:// to a loopback address.
    allow_plain_http: bool = False


@dataclass(frozen=True)
class AMLConfig:
    """Handset location (ETSI TS 103 625 AML / Android ELS), served by `telephony console`."""

    # HTTPS at /aml/v1 (and /aml/v1/sms for an SMS gateway); 0 turns the receiver off.
    bind: str = "127.0.0.1"
    port: int = _checked(8113, _port_or_off)
    # Both files, always HTTPS. Empty: scripts/run and the sandbox make a self-signed pair.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # CA whose client certificates authenticate senders (by common name); empty: Basic only.
    client_ca_file: str = ""
    senders_file: str = "config/aml.toml"
    # A fix matches a call from the same number arriving up to window_before_s after it,
    # or live / ended up to window_after_s before it; unmatched fixes leave the live view then.
    window_before_s: float = _checked(120.0, _positive)
    window_after_s: float = _checked(300.0, _positive)
    # Fix times older than max_age_s or ahead by more than max_future_s are refused.
    max_age_s: float = _checked(3600.0, _positive)
    max_future_s: float = _checked(300.0, _positive)
    # Per sender: messages per second, and the burst allowed above it.
    rate_per_s: float = _checked(200.0, _positive)
    rate_burst: int = _checked(400, _positive)
    # A caller still in the IVR or queued moves to the fix's regency at this accuracy or better.
    route_accuracy_m: float = _checked(500.0, _positive)
    # The SMS gateway's POST: the form (or JSON) fields holding the text and the originator.
    sms_text_field: str = "text"
    sms_from_field: str = "from"


@dataclass(frozen=True)
class Config:
    service: ServiceConfig = field(default_factory=ServiceConfig)
    asterisk: AsteriskConfig = field(default_factory=AsteriskConfig)
    agi: AGIConfig = field(default_factory=AGIConfig)
    ami: AMIConfig = field(default_factory=AMIConfig)
    ivr: IVRConfig = field(default_factory=IVRConfig)
    location: LocationConfig = field(default_factory=LocationConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    operators: OperatorsConfig = field(default_factory=OperatorsConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    edge: EdgeConfig = field(default_factory=EdgeConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    incidents: IncidentsConfig = field(default_factory=IncidentsConfig)
    messages: MessagesConfig = field(default_factory=MessagesConfig)
    aml: AMLConfig = field(default_factory=AMLConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


def _sections() -> dict[str, type[Any]]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def _coerce(raw: Any, kind: Any, key: str, origin: str) -> Any:
    """Turn a TOML value or an env/CLI string into the field's type, or say clearly why not."""
    if isinstance(kind, types.UnionType):
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    if typing.get_origin(kind) is tuple:
        # Lists come from TOML as arrays, from the environment and --set as "a,b,c".
        if isinstance(raw, str):
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            return tuple(raw)
        raise ConfigError(f"{origin}: {key}: expected a list of strings, got {raw!r}")
    from_text = isinstance(raw, str) and kind is not str
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if from_text and raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return raw.lower() in ("1", "true", "yes", "on")
        elif kind is int:
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            if from_text:
                return int(raw)
        elif kind is float:
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                return float(raw)
            if from_text:
                return float(raw)
        elif kind is str and isinstance(raw, str):
            return raw
    except ValueError:
        pass
    raise ConfigError(f"{origin}: {key}: expected {kind.__name__}, got {raw!r}")


def _apply(values: dict[str, dict[str, Any]], key: str, raw: Any, origin: str) -> None:
    section, _, name = key.partition(".")
    sections = _sections()
    if section not in sections or not name:
        raise ConfigError(f"{origin}: {key}: unknown key (sections: {', '.join(sections)})")
    hints = typing.get_type_hints(sections[section])
    if name not in hints:
        raise ConfigError(
            f"{origin}: {key}: unknown key (known in [{section}]: {', '.join(hints)})"
        )
    spec = next(f for f in dataclasses.fields(sections[section]) if f.name == name)
    value = _coerce(raw, hints[name], key, origin)
    check = spec.metadata.get("check")
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{origin}: {key}: {problem}, got {raw!r}")
    values.setdefault(section, {})[name] = value


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def load(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
) -> Config:
    """Build the effective configuration.

    `path` is the TOML file (None: $TELEPHONY_CONFIG, else config/telephony.toml if present);
    `overrides` are CLI `section.key=value` strings, applied last.
    """
    env = os.environ if env is None else env
    values: dict[str, dict[str, Any]] = {}
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    if path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        for section, table in _read_file(path).items():
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: {section}: expected a [{section}] table")
            for name, value in table.items():
                _apply(values, f"{section}.{name}", value, str(path))
    for var, text in sorted(env.items()):
        if not var.startswith(ENV_PREFIX) or var == ENV_PREFIX + "CONFIG":
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        known = next((s for s in _sections() if rest.startswith(s + "_")), None)
        if known is None:
            continue
        _apply(values, f"{known}.{rest[len(known) + 1 :]}", text, f"environment {var}")
    for item in overrides:
        key, sep, given = item.partition("=")
        if not sep:
            raise ConfigError(f"command line: --set {item!r}: expected section.key=value")
        _apply(values, key.strip(), given, "command line --set")
    built = {name: kind(**values.get(name, {})) for name, kind in _sections().items()}
    config = Config(**built)
    _check_transport_security(config)
    _check_pidf_lo(config)
    return config


def is_loopback(host: str) -> bool:
    """Whether `host` (an address, or "localhost") can only be reached from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_transport_security(config: Config) -> None:
    """Rules that span keys; each error names exactly the keys that are missing."""
    ast = config.asterisk
    if not is_loopback(ast.ami_bind):
        _check_ami_off_loopback(config)
    users = [f"asterisk.{name} = {port}" for name, port in
             (("tls_port", ast.tls_port), ("ami_tls_port", ast.ami_tls_port)) if port]
    files = [f"asterisk.{name}" for name in ("tls_cert_file", "tls_key_file")
             if not getattr(ast, name)]
    if users and files:
        raise ConfigError(f"{' and '.join(users)} needs {' and '.join(files)}")
    console = config.console
    if bool(console.tls_cert_file) != bool(console.tls_key_file):
        raise ConfigError("console.tls_cert_file and console.tls_key_file go together")
    if not is_loopback(console.bind) and not console.tls_cert_file:
        raise ConfigError(
            f"console.bind = {console.bind!r} is not a loopback address: the console leaves "
            "loopback only over HTTPS (set console.tls_cert_file and console.tls_key_file)"
        )
    if config.operators.require_tls and not ast.tls_port:
        raise ConfigError(
            "operators.require_tls = true needs the TLS transport: set asterisk.tls_port, "
            "asterisk.tls_cert_file and asterisk.tls_key_file"
        )
    edge = config.edge
    if edge.phones_via_edge and ast.tls_port and not (
            is_loopback(edge.inside_address) and is_loopback(ast.sip_bind)):
        raise ConfigError(
            "edge.registrar with asterisk.tls_port: the phones' SRTP keys (SDES) cross the "
            "edge-to-Asterisk link in clear, so edge.inside_address and asterisk.sip_bind "
            "must be loopback addresses (one host), or set edge.registrar = false"
        )


def _check_pidf_lo(config: Config) -> None:
    # Refused rather than warned about: a warning scrolls by, the crash drops every call.
    if config.location.pidf_lo and not config.edge.enabled:
        raise ConfigError(
            "location.pidf_lo = true needs edge.enabled = true: without the edge, a trunk's "
            "PIDF-LO without <usage-rules> crashes Asterisk 22.10.1. In direct mode set "
            "location.pidf_lo = false (a trunk whose own SBC strips such bodies may set "
            "pidf_lo = true in config/trunks.toml)"
        )


def _check_ami_off_loopback(config: Config) -> None:
    ast = config.asterisk
    try:
        everywhere = ipaddress.ip_address(ast.ami_bind).is_unspecified
    except ValueError:
        everywhere = False
    if everywhere:
        raise ConfigError(
            f"asterisk.ami_bind = {ast.ami_bind!r} listens on every interface: off loopback, "
            "bind AMI to the one address its certificate names"
        )
    missing = [key for key, unset in (
        ("asterisk.ami_tls_port", not ast.ami_tls_port),
        ("asterisk.tls_cert_file", not ast.tls_cert_file),
        ("asterisk.tls_key_file", not ast.tls_key_file),
        ("ami.permit", not config.ami.permit),
    ) if unset]
    if missing:
        raise ConfigError(
            f"asterisk.ami_bind = {ast.ami_bind!r} is not a loopback address; AMI leaves "
            f"loopback only over TLS and behind an ACL. Missing: {', '.join(missing)}"
        )


def as_set_flags(config: Config) -> list[str]:
    """Every value of ``config`` as ``--set`` flags, so that a child process started with
    them (and no TELEPHONY_* environment) loads exactly this config."""
    flags = []
    for section in dataclasses.fields(config):
        values = getattr(config, section.name)
        for item in dataclasses.fields(values):
            value = getattr(values, item.name)
            text = ",".join(value) if isinstance(value, tuple) else str(value)
            flags += ["--set", f"{section.name}.{item.name}={text}"]
    return flags


def resolve_path(value: str) -> Path:
    """Config paths may start with ~ and are relative to the working directory; the
    defaults under config/, dialplans/ and ivr_prompts/ fall back to the shipped copies."""
    return located(value)
