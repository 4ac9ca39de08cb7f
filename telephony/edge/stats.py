"""Kamailio's statistics over its JSON-RPC (jsonrpcs over xhttp), for telephony's /metrics.

`RpcClient` is the socket edge; `parse_statistics` is pure. The edge's own counters
(render.COUNTERS) live in Kamailio's "script" group; core, tm, sl and dialog statistics
come along so that a scrape also shows Kamailio's load and active calls.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from telephony.config import Config
from telephony.edge import phones
from telephony.edge.render import COUNTERS, EdgeError

RPC_TIMEOUT_S = 2.0
# Kamailio statistics worth a gauge beside the edge's counters: (group, name, help).
GAUGES = (
    ("dialog", "active_dialogs", "Calls in progress through the edge"),
    ("tmx", "active_transactions", "SIP transactions in progress in the edge"),
    ("shmem", "used_size", "Bytes of Kamailio shared memory in use"),
)
COUNTER_HELP = {
    "refused_untrusted": "Requests refused (403) because their source is not a trunk",
    "refused_oversize": "Requests refused (413/513) for oversized headers or body",
    "refused_malformed": "Requests refused (400) by sanity checks",
    "flood_blocked_sources": "Times a foreign source was blocked for flooding",
    "flood_dropped": "Requests from blocked flooding sources dropped unanswered",
    "rate_limited": "Trunk INVITEs refused (503) above the trunk's rate",
    "normalised": "Trunk calls whose dialled number was normalised",
    "sanitised": "Trunk calls whose caller identity had control characters replaced",
    "pidf_kept": "PIDF-LO bodies passed to Asterisk as safe",
    "pidf_stripped": "PIDF-LO bodies stripped as unsafe or unchecked",
    "phone_auth_failed": "Phone REGISTERs refused (403) for a wrong user or password",
    "phone_insecure": "Phone requests refused for lack of TLS (require_tls, SDES over UDP)",
}


def parse_statistics(result: Any) -> dict[str, int]:
    """`stats.fetch all` ({"group.name": "value"}) as {"group.name": int}; others skipped."""
    if not isinstance(result, Mapping):
        raise EdgeError(f"unexpected stats.fetch result: {result!r:.200}")
    values: dict[str, int] = {}
    for key, value in result.items():
        try:
            values[str(key)] = int(value)
        except (TypeError, ValueError):
            continue
    return values


@dataclass(frozen=True)
class EdgeStats:
    values: Mapping[str, int]

    def counter(self, name: str) -> int:
        return self.values.get(f"script.{name}", 0)

    @property
    def counters(self) -> dict[str, int]:
        return {name: self.counter(name) for name in COUNTERS + phones.COUNTERS}


class RpcClient:
    def __init__(self, host: str, port: int) -> None:
        self.url = f"http://{host}:{port}/RPC"

    def call(self, method: str, *params: str | int) -> Any:
        request = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params),
                              "id": 1}).encode()
        try:
            with urllib.request.urlopen(
                urllib.request.Request(self.url, request, {"Content-Type": "application/json"}),
                timeout=RPC_TIMEOUT_S,
            ) as answer:
                reply = json.loads(answer.read())
        except (OSError, ValueError) as exc:
            raise EdgeError(f"Kamailio JSON-RPC {method} at {self.url}: {exc}") from exc
        if "error" in reply:
            raise EdgeError(f"Kamailio JSON-RPC {method}: {reply['error']}")
        return reply.get("result")

    def answers(self) -> bool:
        try:
            self.call("core.version")
        except EdgeError:
            return False
        return True

    def statistics(self) -> EdgeStats:
        return EdgeStats(parse_statistics(self.call("stats.fetch", "all")))


class EdgeCollector:
    """Prometheus collector: the edge's counters and a few Kamailio gauges, read per scrape."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("telephony_edge_up", "Whether Kamailio answered JSON-RPC")
        try:
            stats = self.rpc.statistics()
        except EdgeError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, value in stats.counters.items():
            family = CounterMetricFamily(f"telephony_edge_{name}", COUNTER_HELP[name])
            family.add_metric([], value)
            yield family
        for group, name, text in GAUGES:
            gauge = GaugeMetricFamily(f"telephony_edge_{group}_{name}", text)
            gauge.add_metric([], stats.values.get(f"{group}.{name}", 0))
            yield gauge


def edge_collector(config: Config) -> EdgeCollector:
    # JSON-RPC listens on loopback only (kamailio/kamailio.cfg).
    return EdgeCollector(RpcClient("127.0.0.1", config.edge.rpc_port))
