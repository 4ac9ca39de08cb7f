"""The agencies a regency's centre hands incidents to: config/agencies.toml (config/README.md).

Each agency belongs to one regency and has a kind (Polri 110, Damkar 113, PSC 119, BPBD,
Basarnas 115, or other) and its delivery channels: agency users on the console always, and a
webhook when ``webhook_url`` is set. A webhook must be HTTPS; plain HTTP only to a loopback
address and only with ``incidents.allow_plain_http`` (the sandbox), so an incident never
crosses a network in clear text.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from telephony import values
from telephony.config import is_loopback
from telephony.errors import ConfigurationError
from telephony.location.region import Regions

KINDS = {"polri": "110", "damkar": "113", "psc119": "119", "bpbd": "", "basarnas": "115",
         "other": ""}
AGENCY_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{1,63}")
DEFAULT_ACK_TIMEOUT_S = 120.0


class AgencyError(ConfigurationError):
    """config/agencies.toml is wrong; the message names the agency and the key."""


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    kind: str
    number: str
    regency_code: str
    ack_timeout_s: float
    webhook_url: str = ""
    webhook_secret_file: str = ""


def check_webhook_url(url: str, allow_plain_http: bool) -> str | None:
    """Why ``url`` may not receive incidents, or None."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "is not an absolute URL"
    if parts.username or parts.password:
        return "must not carry credentials (the HMAC signature authenticates us)"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_plain_http and is_loopback(parts.hostname):
        return None
    return "must be https:// (plain http only to loopback with incidents.allow_plain_http)"


def _agency(entry: Any, where: str, allow_plain_http: bool) -> Agency:
    if not isinstance(entry, dict):
        raise AgencyError(f"{where}: expected a table")
    agency_id = str(entry.get("id", ""))
    if not AGENCY_ID.fullmatch(agency_id):
        raise AgencyError(f"{where}: id {agency_id!r} must be 2-64 of a-z, 0-9, '_', '.', '-'")
    where = f"{where} ({agency_id})"
    kind = str(entry.get("kind", ""))
    if kind not in KINDS:
        raise AgencyError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    name = str(entry.get("name", ""))
    if problem := values.name(name):
        raise AgencyError(f"{where}: name {name!r} {problem}")
    number = str(entry.get("number", KINDS[kind]))
    if number and (problem := values.number(number)):
        raise AgencyError(f"{where}: number {number!r} {problem}")
    try:
        timeout = float(entry.get("ack_timeout_s", DEFAULT_ACK_TIMEOUT_S))
    except (TypeError, ValueError) as exc:
        raise AgencyError(f"{where}: ack_timeout_s must be a number of seconds") from exc
    if timeout <= 0:
        raise AgencyError(f"{where}: ack_timeout_s must be greater than 0")
    url = str(entry.get("webhook_url", ""))
    if url and (problem := check_webhook_url(url, allow_plain_http)):
        raise AgencyError(f"{where}: webhook_url {url!r} {problem}")
    secret_file = str(entry.get("webhook_secret_file", ""))
    if url and not secret_file:
        secret_file = f"var/agency-secrets/{agency_id}.key"
    if problem := values.path(secret_file):
        raise AgencyError(f"{where}: webhook_secret_file {problem}")
    return Agency(agency_id, name, kind, number, str(entry.get("regency", "")), timeout, url,
                  secret_file)


def load_agencies(path: str | Path, regions: Regions,
                  allow_plain_http: bool = False) -> dict[str, Agency]:
    """Agencies by id, checked against the regions; raises AgencyError."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AgencyError(f"{path}: {exc}") from exc
    agencies: dict[str, Agency] = {}
    for index, entry in enumerate(data.get("agency", [])):
        agency = _agency(entry, f"{path}: agency #{index + 1}", allow_plain_http)
        if agency.id in agencies:
            raise AgencyError(f"{path}: agency {agency.id}: listed twice")
        if agency.regency_code not in regions.regencies:
            raise AgencyError(f"{path}: agency {agency.id}: unknown regency "
                              f"{agency.regency_code!r}")
        agencies[agency.id] = agency
    return agencies
