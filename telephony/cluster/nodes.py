"""config/cluster.toml: the nodes, and each regency's home and backup node.

A single-node deployment has no such file (`load` returns None). Kamailio's dispatcher
routes a regency's calls to a set of its own, home node first, then the backup
(`dispatcher_list`, the module's plain-text list file: `setid uri flags priority attrs`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telephony.config import Config
from telephony.errors import ConfigurationError

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
_REGENCY = re.compile(r"\d{2}\.\d{2}")
# Dispatcher flag 8: probe this destination with OPTIONS (ds_probing_mode may add others).
PROBE = 8
# What the probe asks a node: OPTIONS to the emergency number, which Asterisk answers 200
# only when its dialplan takes the number, and 503 while it shuts down gracefully.
PROBE_USER = "112"


class ClusterError(ConfigurationError):
    """config/cluster.toml is invalid; the message names the file and the entry."""


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    sip_port: int = 5080


@dataclass(frozen=True)
class Regency:
    code: str
    home: str
    backup: str


@dataclass(frozen=True)
class Cluster:
    nodes: tuple[Node, ...]
    regencies: tuple[Regency, ...]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def set_id(self, code: str) -> int:
        """The regency's dispatcher set: its place in the file, from 1."""
        return 1 + [r.code for r in self.regencies].index(code)

    @property
    def all_set(self) -> int:
        """The set of every node, after the regencies' sets: for a call whose regency the
        edge cannot tell, which must still reach a human."""
        return len(self.regencies) + 1

    def route_set(self, code: str | None) -> int:
        """The dispatcher set for a call of regency `code`: its own, or every node when the
        regency is unknown or no node holds it (fail open)."""
        held = {r.code for r in self.regencies}
        return self.set_id(code) if code is not None and code in held else self.all_set


def load(path: Path) -> Cluster | None:
    """The cluster described at `path`, or None (one node) when there is no such file."""
    if not path.exists():
        return None
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ClusterError(f"{path}: {exc}") from exc
    nodes = tuple(_node(path, entry) for entry in data.get("node", []))
    names = [n.name for n in nodes]
    if len(nodes) < 2 or len(set(names)) != len(names):
        raise ClusterError(f"{path}: a cluster needs two or more [[node]] with distinct names")
    if len({(n.address, n.sip_port) for n in nodes}) != len(nodes):
        raise ClusterError(f"{path}: two nodes share an address and port")
    regencies = tuple(_regency(path, entry, names) for entry in data.get("regency", []))
    codes = [r.code for r in regencies]
    if not regencies or len(set(codes)) != len(codes):
        raise ClusterError(f"{path}: every [[regency]] once, and at least one")
    return Cluster(nodes, regencies)


def _node(path: Path, entry: dict[str, Any]) -> Node:
    name, address, port = entry.get("name"), entry.get("address"), entry.get("sip_port", 5080)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ClusterError(f"{path}: node name {name!r} must be lower-case letters, digits, -")
    try:
        ipaddress.ip_address(str(address))
    except ValueError as exc:
        raise ClusterError(f"{path}: node {name}: address {address!r} is not an IP") from exc
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ClusterError(f"{path}: node {name}: sip_port {port!r} is not a port")
    return Node(name, str(address), port)


def _regency(path: Path, entry: dict[str, Any], names: list[str]) -> Regency:
    code, home, backup = entry.get("code"), entry.get("home"), entry.get("backup")
    if not isinstance(code, str) or not _REGENCY.fullmatch(code):
        raise ClusterError(f"{path}: regency code {code!r} must look like 35.73")
    if home not in names or backup not in names or home == backup:
        raise ClusterError(
            f"{path}: regency {code}: home {home!r} and backup {backup!r} must be two "
            f"different nodes of {names}"
        )
    return Regency(code, str(home), str(backup))


def node_uri(node: Node) -> str:
    """The node as a dispatcher destination, and the Request-URI of its probe."""
    return f"sip:{PROBE_USER}@{node.address}:{node.sip_port}"


def dispatcher_list(cluster: Cluster) -> str:
    """Kamailio's dispatcher list: one set per regency, home (priority 2) before backup
    (priority 1), for `ds_select_dst(set, "8")` (by priority) and `ds_next_dst()` in the
    failure_route; then the set of every node, in the file's order (`all_set`). Every
    destination probed."""
    lines = ["# Generated by telephony from config/cluster.toml: setid uri flags priority attrs"]
    for regency in cluster.regencies:
        set_id = cluster.set_id(regency.code)
        for priority, name in ((2, regency.home), (1, regency.backup)):
            node = cluster.node(name)
            lines.append(f"{set_id} {node_uri(node)} {PROBE} {priority} "
                         f"duid={node.name};regency={regency.code}")
    for index, node in enumerate(cluster.nodes):
        priority = len(cluster.nodes) - index
        lines.append(f"{cluster.all_set} {node_uri(node)} {PROBE} {priority} duid={node.name}")
    return "\n".join(lines) + "\n"


def node_config(config: Config, cluster: Cluster, name: str) -> Config:
    """`config` as node `name` runs it: every node's config is the same but its addresses
    (SIP, AMI, FastAGI and health on the node's own address) and its local files."""
    if name not in [n.name for n in cluster.nodes]:
        raise ClusterError(f"cluster.node = {name!r} is not a node of cluster.file "
                           f"({', '.join(n.name for n in cluster.nodes)})")
    node = cluster.node(name)

    def local(path: str) -> str:
        # Each node keeps its own spool, checkpoints and runtime tree beside the others.
        where = Path(path)
        return str(where.parent / "nodes" / name / where.name)

    audit = config.audit
    return dataclasses.replace(
        config,
        asterisk=dataclasses.replace(
            config.asterisk, sip_bind=node.address, sip_port=node.sip_port,
            ami_bind=node.address, runtime_dir=local(config.asterisk.runtime_dir)),
        agi=dataclasses.replace(config.agi, bind=node.address),
        health=dataclasses.replace(config.health, bind=node.address),
        audit=dataclasses.replace(
            audit, spool_path=local(audit.spool_path),
            checkpoint_path=local(audit.checkpoint_path),
            quarantine_path=local(audit.quarantine_path),
            overflow_path=local(audit.overflow_path)),
        recording=dataclasses.replace(config.recording,
                                      directory=local(config.recording.directory)),
        cluster=dataclasses.replace(config.cluster, node=name),
    )
