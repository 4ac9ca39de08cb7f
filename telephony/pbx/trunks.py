"""Extra SIP trunks (config/trunks.toml) beside the default mobile-network trunk.

Each trunk is recognised by its source networks. Whether its P-Asserted-Identity and its
P-Access-Network-Info may be believed is per trunk: the dialplan learns it from the
endpoint's `set_var TRUNK_TRUSTED`, and the IVR routes on a cell only when it is "yes".
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from telephony import values
from telephony.config import Config
from telephony.errors import ConfigurationError

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
_CODECS = ("ulaw", "alaw", "g722", "opus", "gsm")
_DTMF = ("rfc4733", "inband", "info", "auto")


class TrunkError(ConfigurationError):
    """A trunk entry is invalid; the message names the file and the trunk."""


@dataclass(frozen=True)
class Trunk:
    name: str
    networks: tuple[str, ...]
    codecs: tuple[str, ...] = ("ulaw", "alaw")
    trust_identity: bool = True
    trust_location: bool = True
    dtmf_mode: str = "rfc4733"
    outbound: str = ""
    pidf_lo: bool = False

    @property
    def endpoint(self) -> str:
        return f"trunk-{self.name}"


def default_trunk(config: Config) -> Trunk:
    """The mobile network's trunk of the embedded defaults (asterisk.trunk_address)."""
    return Trunk(
        name="mno",
        networks=(config.asterisk.trunk_address,),
        trust_location=config.location.trunk_trusted,
        outbound=config.callbacks.trunk_contact,
        pidf_lo=config.location.pidf_lo,
    )


def _trunk(entry: object, where: str) -> Trunk:
    if not isinstance(entry, dict):
        raise TrunkError(f"{where}: expected a [[trunk]] table")
    name = str(entry.get("name", ""))
    if not _NAME.fullmatch(name) or name == "mno":
        raise TrunkError(f"{where}: name {name!r} must be 1-31 of a-z, 0-9 and -, not 'mno'")
    where = f"{where} ({name})"
    networks = entry.get("networks", [])
    if not isinstance(networks, list) or not networks:
        raise TrunkError(f"{where}: networks must list at least one address or CIDR")
    for network in networks:
        try:
            ipaddress.ip_network(str(network), strict=False)
        except ValueError as exc:
            raise TrunkError(f"{where}: networks: {exc}") from exc
    codecs = tuple(str(c) for c in entry.get("codecs", ["ulaw", "alaw"]))
    if not codecs or any(c not in _CODECS for c in codecs):
        raise TrunkError(f"{where}: codecs must be among {', '.join(_CODECS)}")
    dtmf = str(entry.get("dtmf_mode", "rfc4733"))
    if dtmf not in _DTMF:
        raise TrunkError(f"{where}: dtmf_mode must be one of {', '.join(_DTMF)}")
    flags = {k: entry.get(k, True) for k in ("trust_identity", "trust_location")}
    flags["pidf_lo"] = entry.get("pidf_lo", False)
    if not all(isinstance(v, bool) for v in flags.values()):
        raise TrunkError(f"{where}: trust_identity, trust_location and pidf_lo are true or false")
    outbound = str(entry.get("outbound", ""))
    if problem := values.sip_uri(outbound):
        raise TrunkError(f"{where}: outbound {outbound!r}: {problem}")
    return Trunk(name, tuple(str(n) for n in networks), codecs, flags["trust_identity"],
                 flags["trust_location"], dtmf, outbound, flags["pidf_lo"])


def load_trunks(path: Path, config: Config) -> tuple[Trunk, ...]:
    """The default trunk, then those of `path` (absent file: none)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TrunkError(f"{path}: {exc}") from exc
    trunks = [default_trunk(config)]
    trunks += [_trunk(e, f"{path}: trunk #{n}") for n, e in enumerate(data.get("trunk", []), 1)]
    names = [t.name for t in trunks]
    if len(set(names)) != len(names):
        raise TrunkError(f"{path}: trunk names must be unique")
    return tuple(trunks)
