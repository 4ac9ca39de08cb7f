"""Two sandboxed Asterisk nodes (127.0.0.11 and 127.0.0.12) behind one Kamailio edge, with
a cluster file written here, and `telephony serve` of node a answering the edge's regency
question (telephony.edge.regency).

Node b comes first in the file, so the set of every node (a call whose regency the edge
cannot tell) starts with b: a call that reaches a did so by its regency.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from telephony import config as config_mod
from telephony.cluster.nodes import Cluster, load, node_config, node_uri
from telephony.config import resolve_path
from telephony.edge.process import Kamailio
from telephony.location import import_routes, load_regions
from telephony.pbx import sandbox
from telephony.pbx.process import Asterisk
from telephony.pbx.provision import AsteriskInstall
from telephony.resources import shipped
from telephony.store import open_database
from tests.harness.net import free_udp
from tests.harness.sandbox import sandbox_config, wait_no_channels
from tests.harness.service import ServeProcess

ADDRESSES = {"a": "127.0.0.11", "b": "127.0.0.12"}
REGENCY = "35.73"
# A request Asterisk received, in its pjsip history: `<== ... INVITE sip:...`.
_RECEIVED = re.compile(r"^\d{5} \d+ \* <== \S+\s+([A-Z]+) sip:", re.MULTILINE)


def cluster_toml(ports: dict[str, int]) -> str:
    nodes = "".join(
        f'[[node]]\nname = "{name}"\naddress = "{ADDRESSES[name]}"\nsip_port = {ports[name]}\n\n'
        for name in ("b", "a")
    )
    return (f'{nodes}[[regency]]\ncode = "{REGENCY}"\nhome = "a"\nbackup = "b"\n\n'
            '[[regency]]\ncode = "35.78"\nhome = "b"\nbackup = "a"\n')  # fmt: skip


def dispatcher_flags(listing: Any) -> dict[tuple[int, str], str]:
    """(set, uri) -> FLAGS ("AP" active and probed, "IP" inactive, "TP" trying) from
    Kamailio's `dispatcher.list`."""
    flags: dict[tuple[int, str], str] = {}
    records = listing.get("RECORDS", []) if isinstance(listing, dict) else []
    for record in records:
        found = record["SET"]
        targets = found.get("TARGETS", [])
        for target in targets if isinstance(targets, list) else [targets]:
            dest = target["DEST"]
            flags[(int(found["ID"]), str(dest["URI"]))] = str(dest["FLAGS"])
    return flags


@dataclass
class Nodes:
    cluster: Cluster
    edge_config: config_mod.Config
    edge: Kamailio
    asterisks: dict[str, Asterisk]
    serve: ServeProcess
    workdir: Path
    install: AsteriskInstall

    def start(self, name: str) -> None:
        """(Re)start node `name`'s Asterisk, as node_config renders it."""
        self.asterisks[name] = _start(
            self.install, node_config(self.edge_config, self.cluster, name)
        )

    def wait_no_channels(self, name: str) -> int:
        """Wait until node `name` has no channels; return how many are left at the deadline."""
        return wait_no_channels(self.asterisks[name])

    def edge_log(self) -> str:
        return self.edge.layout.log.read_text(errors="replace")

    @property
    def target(self) -> str:
        return f"{self.edge_config.edge.bind}:{self.edge_config.edge.port}"

    def invites(self, name: str) -> int:
        """INVITEs node `name` has received since it started."""
        return self.received(name, "INVITE")

    def received(self, name: str, method: str) -> int:
        """Requests of `method` node `name` has received since it started."""
        methods = _RECEIVED.findall(self.asterisks[name].cli("pjsip show history"))
        return methods.count(method)

    def flags(self, name: str) -> set[str]:
        """The node's dispatcher flags in every set that holds it."""
        uri = node_uri(self.cluster.node(name))
        listing = dispatcher_flags(self.edge.rpc.call("dispatcher.list"))
        return {flags for (_, dest), flags in listing.items() if dest == uri}

    def wait_flags(self, name: str, prefix: str, timeout: float = 15.0) -> float:
        """Wait until every set holds node `name` in a state starting with `prefix` ("I":
        inactive, "A": active); return how long that took."""
        started = time.monotonic()
        while True:
            flags = self.flags(name)
            if flags and all(f.startswith(prefix) for f in flags):
                return time.monotonic() - started
            assert time.monotonic() - started < timeout, f"node {name}: {flags}, not {prefix}*"
            time.sleep(0.05)  # the dispatcher's state changes with no event to this test: poll


def _start(install: AsteriskInstall, config: config_mod.Config) -> Asterisk:
    asterisk = sandbox.start(config, install)
    asterisk.cli("pjsip set history on")
    return asterisk


@pytest.fixture(scope="module")
def nodes(
    asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Nodes]:
    root = tmp_path_factory.mktemp("c")
    toml = root / "cluster.toml"
    toml.write_text(cluster_toml({name: free_udp(addr) for name, addr in ADDRESSES.items()}))
    base = sandbox_config(root, f"cluster.file={toml}")
    cluster = load(toml)
    assert cluster is not None
    engine = open_database(base)
    try:
        # The shared database, as every node's serve has it: the cell routes.
        regions = load_regions(resolve_path(base.location.regions_file))
        import_routes(engine, shipped("config/routing.example.csv"), regions=regions)
    finally:
        engine.dispose()
    asterisks: dict[str, Asterisk] = {}
    serve: ServeProcess | None = None
    edge = Kamailio(base)
    try:
        for name in ("a", "b"):
            asterisks[name] = _start(asterisk_install, node_config(base, cluster, name))
        serve = ServeProcess(node_config(base, cluster, "a"), root / "serve-a.log")
        serve.wait_ready()
        edge.start()
        found = Nodes(cluster, base, edge, asterisks, serve, root, asterisk_install)
        for name in ("a", "b"):
            found.wait_flags(name, "A")
        yield found
    finally:
        edge.stop()
        if serve is not None:
            serve.stop()
        for asterisk in asterisks.values():
            asterisk.stop()
