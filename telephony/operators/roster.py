"""The operator roster (config/operators.toml): identity, home regency, languages, queues.

Passwords never reach Asterisk's config: each operator has an HA1 digest
(md5 of "id:realm:password"), rendered as PJSIP `md5_cred`. A plain `password` is accepted
only for the sandbox's demo operators, so that scripts/run can print working credentials.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomlkit

from telephony import values
from telephony.contract import overflow_queue
from telephony.errors import ConfigurationError
from telephony.location.region import Regions, queue_name

REALM = "112"
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{1,31}")
_HA1 = re.compile(r"[0-9a-f]{32}")
LANGUAGES = ("id", "en")


class RosterError(ConfigurationError):
    """The roster file is unreadable or an entry is invalid; the message names file and entry."""


@dataclass(frozen=True)
class Operator:
    id: str
    name: str
    regency: str
    ha1: str
    languages: tuple[str, ...] = ("id",)
    queues: tuple[str, ...] = ()
    demo_password: str | None = None

    @property
    def interface(self) -> str:
        return f"PJSIP/{self.id}"


def is_operator_id(text: str) -> bool:
    """Whether `text` is a well-formed operator id (also a PJSIP endpoint and a SIP user)."""
    return _ID.fullmatch(text) is not None


def ha1(user: str, password: str, realm: str = REALM) -> str:
    """RFC 2617 HA1, what PJSIP's md5_cred holds; md5 is what SIP digest auth requires."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()


def _operator(entry: object, regions: Regions, where: str) -> Operator:
    if not isinstance(entry, dict):
        raise RosterError(f"{where}: expected an [[operator]] table")
    op_id = str(entry.get("id", ""))
    if not is_operator_id(op_id):
        raise RosterError(f"{where}: id {op_id!r} must be 2-32 of a-z, 0-9, _ and -")
    where = f"{where} ({op_id})"
    regency = str(entry.get("regency", ""))
    if regency not in regions.regencies:
        raise RosterError(f"{where}: regency {regency!r} is not in the region file")
    password = entry.get("password")
    digest = str(entry.get("ha1", "")).lower()
    if password is not None:
        digest = ha1(op_id, str(password))
    if not _HA1.fullmatch(digest):
        raise RosterError(f"{where}: needs ha1 (32 hex digits) or, for demo operators, password")
    languages = tuple(entry.get("languages", ["id"]))
    if not languages or any(lang not in LANGUAGES for lang in languages):
        raise RosterError(f"{where}: languages must be among {', '.join(LANGUAGES)}")
    queues = tuple(str(q) for q in entry.get("queues", []))
    for queue in queues:
        if problem := values.queue(queue):
            raise RosterError(f"{where}: queues: {queue!r}: {problem}")
    # The name is the phone's caller-ID display in pjsip_112.conf.
    name = str(entry.get("name") or op_id)
    if problem := values.name(name):
        raise RosterError(f"{where}: name {name!r} {problem}")
    return Operator(
        id=op_id,
        name=name,
        regency=regency,
        ha1=digest,
        languages=languages,
        queues=queues,
        demo_password=None if password is None else str(password),
    )


def load_roster(path: Path, regions: Regions) -> tuple[Operator, ...]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RosterError(f"{path}: {exc}") from exc
    operators = [
        _operator(entry, regions, f"{path}: operator #{n}")
        for n, entry in enumerate(data.get("operator", []), start=1)
    ]
    seen: set[str] = set()
    for op in operators:
        if op.id in seen:
            raise RosterError(f"{path}: operator {op.id!r} is listed twice")
        seen.add(op.id)
    return tuple(operators)


def memberships(op: Operator, regions: Regions) -> tuple[str, ...]:
    """Every queue the operator answers, in ringing order of preference.

    Home regency queue; the overflow queues of home and of every launched neighbour (so a
    neighbour's unanswered caller reaches them after the overflow time); the province queue
    (the last resort, which has no timeout); then any extra queues from the roster.
    """
    home = regions.regencies[op.regency]
    found: list[str] = []
    if home.launch:
        found += [queue_name(home.code), overflow_queue(home.code)]
    for code in home.neighbours:
        neighbour = regions.regencies.get(code)
        if neighbour is not None and neighbour.launch:
            found.append(overflow_queue(code))
    found.append(queue_name(regions.province_code))
    found += op.queues
    return tuple(dict.fromkeys(found))




def add_operator(
    path: Path, regions: Regions, op_id: str, regency: str, password: str, name: str | None
) -> Operator:
    """Append an operator to the roster file, keeping its comments; only the HA1 is stored."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    document = tomlkit.parse(text)
    entry = {"id": op_id, "name": name or op_id, "regency": regency, "ha1": ha1(op_id, password)}
    op = _operator(entry, regions, f"{path}: new operator")
    if any(o.id == op_id for o in load_roster(path, regions)):
        raise RosterError(f"{path}: operator {op_id!r} already exists")
    table = tomlkit.table()
    table.update(entry)
    if "operator" not in document:
        document["operator"] = tomlkit.aot()
    document["operator"].append(table)
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    return op


def remove_operator(path: Path, op_id: str) -> None:
    document = tomlkit.parse(path.read_text(encoding="utf-8") if path.exists() else "")
    entries = document.get("operator", [])
    kept = [e for e in entries if e.get("id") != op_id]
    if len(kept) == len(entries):
        raise RosterError(f"{path}: no operator {op_id!r}")
    document["operator"] = tomlkit.aot()
    for entry in kept:
        document["operator"].append(entry)
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
