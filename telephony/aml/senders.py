"""Who may send handset fixes: the senders in ``config/aml.toml`` and how they prove it.

A sender is authenticated by a client certificate (its common name, the chain checked by
TLS against ``aml.client_ca_file``) or by HTTP Basic (user = its name, password = its
shared secret, argon2id-hashed in the file) from one of its networks. argon2 is slow on
purpose, so a secret once verified is remembered by its SHA-256 for the process's life:
a sender posting hundreds of fixes a second costs one hash each, not one argon2.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from telephony.errors import ConfigurationError

_HASHER = PasswordHasher()
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MIN_SECRET = 16


class SenderError(ConfigurationError):
    """The senders file or a sender given on the command line is wrong."""


@dataclass(frozen=True)
class Sender:
    name: str
    networks: tuple[str, ...]
    secret_hash: str = ""
    certificate_name: str = ""

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net) for net in self.networks)


def _sender(entry: object, path: Path) -> Sender:
    if not isinstance(entry, dict):
        raise SenderError(f"{path}: each [[sender]] is a table")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SenderError(f"{path}: sender name {name!r}: lower-case letters, digits, . _ -")
    networks = entry.get("networks", [])
    if not isinstance(networks, list) or not networks:
        raise SenderError(f"{path}: sender {name}: networks must list at least one CIDR")
    for net in networks:
        _network(str(net), f"{path}: sender {name}")
    sender = Sender(name, tuple(str(n) for n in networks), str(entry.get("secret_hash", "")),
                    str(entry.get("certificate_name", "")))
    if not sender.secret_hash and not sender.certificate_name:
        raise SenderError(f"{path}: sender {name} has neither secret_hash nor certificate_name")
    return sender


def _network(text: str, where: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError as exc:
        raise SenderError(f"{where}: {text!r} is not a network (CIDR)") from exc


def load_senders(path: Path) -> tuple[Sender, ...]:
    if not path.exists():
        return ()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SenderError(f"{path}: {exc}") from exc
    senders = tuple(_sender(entry, path) for entry in data.get("sender", []))
    names = [s.name for s in senders]
    if len(set(names)) != len(names):
        raise SenderError(f"{path}: a sender name appears twice")
    return senders


_HEADER = ("# Senders of handset location (AML/ELS); managed with `telephony aml senders`.\n"
           "# See docs/aml.md. secret_hash is argon2id; the secret itself is kept nowhere.\n")


def save_senders(path: Path, senders: Sequence[Sender]) -> None:
    # json.dumps of a str is a valid TOML basic string (same escapes), so no TOML writer.
    blocks = [
        "[[sender]]\n"
        f"name = {json.dumps(s.name)}\n"
        f"networks = [{', '.join(json.dumps(n) for n in s.networks)}]\n"
        + (f"secret_hash = {json.dumps(s.secret_hash)}\n" if s.secret_hash else "")
        + (f"certificate_name = {json.dumps(s.certificate_name)}\n"
           if s.certificate_name else "")
        for s in senders
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(_HEADER + "\n" + "\n".join(blocks))
    temporary.chmod(0o600)
    temporary.replace(path)


def add_sender(path: Path, name: str, networks: Sequence[str], secret: str = "",
               certificate_name: str = "") -> Sender:
    if not _NAME.fullmatch(name):
        raise SenderError(f"sender name {name!r}: lower-case letters, digits, . _ -")
    if not networks:
        raise SenderError("a sender needs at least one --network CIDR")
    if secret and len(secret) < MIN_SECRET:
        raise SenderError(f"the secret must have at least {MIN_SECRET} characters")
    if not secret and not certificate_name:
        raise SenderError("give --secret-stdin or --certificate-name (or both)")
    senders = [s for s in load_senders(path) if s.name != name]
    sender = Sender(name, tuple(_network(n, "--network") for n in networks),
                    _HASHER.hash(secret) if secret else "", certificate_name)
    save_senders(path, [*senders, sender])
    return sender


def remove_sender(path: Path, name: str) -> None:
    senders = load_senders(path)
    if not any(s.name == name for s in senders):
        raise SenderError(f"{path}: no sender {name!r}")
    save_senders(path, [s for s in senders if s.name != name])


class Verdict:
    """401: no or wrong credentials; 403: right credentials from a network not theirs."""

    UNAUTHENTICATED = 401
    FORBIDDEN = 403


class Authenticator:
    def __init__(self, senders: Sequence[Sender]) -> None:
        self._by_name = {s.name: s for s in senders}
        self._by_cert = {s.certificate_name: s for s in senders if s.certificate_name}
        self._verified: set[tuple[str, bytes]] = set()
        self._lock = threading.Lock()

    def by_certificate(self, common_name: str, address: str) -> Sender | int:
        sender = self._by_cert.get(common_name)
        if sender is None:
            return Verdict.UNAUTHENTICATED
        return sender if sender.allows(address) else Verdict.FORBIDDEN

    def by_secret(self, name: str, secret: str, address: str) -> Sender | int:
        sender = self._by_name.get(name)
        if sender is None or not sender.secret_hash:
            return Verdict.UNAUTHENTICATED
        digest = hashlib.sha256(secret.encode("utf-8", "replace")).digest()
        with self._lock:
            known = any(n == name and hmac.compare_digest(d, digest)
                        for n, d in self._verified)
        if not known:
            try:
                _HASHER.verify(sender.secret_hash, secret)
            except (VerificationError, InvalidHashError):
                return Verdict.UNAUTHENTICATED
            with self._lock:
                self._verified.add((name, digest))
        return sender if sender.allows(address) else Verdict.FORBIDDEN


class RateLimit:
    """A token bucket per sender: ``rate`` per second, ``burst`` above it."""

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._burst = rate, float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, name: str) -> bool:
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(name, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rate)
            if tokens < 1.0:
                self._buckets[name] = (tokens, now)
                return False
            self._buckets[name] = (tokens - 1.0, now)
            return True
