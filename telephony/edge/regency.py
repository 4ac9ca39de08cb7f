"""Which nodes a new call goes to, asked by the edge in a cluster (docs/cluster.md).

Kamailio asks `GET /edge/pidf/regency?trunk=<name>&pani=<P-Access-Network-Info>` before it
picks a dispatcher set; the answer's first line is the set's number. The regency comes from
the network-provided cell through the operator's routing table, as in the IVR
(telephony.location), and only from a trunk trusted with location. Anything else (no cell,
an unknown cell, an untrusted trunk, a broken table) answers the set of every node: the call
still reaches a human, and the IVR on that node routes it as on a single node. Kamailio
itself falls back to that set when this question goes unanswered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

import structlog

from telephony.cluster.nodes import Cluster
from telephony.config import Config, resolve_path
from telephony.edge.dispatch import cluster_of
from telephony.location.cell import parse_access_network_info, routable_cell
from telephony.location.store import RouteTable
from telephony.pbx.trunks import load_trunks

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Question:
    trunk: str
    pani: str


def parse_question(query: str) -> Question | None:
    """The trunk and the P-Access-Network-Info of a `regency` query; None when malformed."""
    try:
        fields = parse_qs(query, keep_blank_values=True, max_num_fields=4)
    except ValueError:  # more fields than any question of Kamailio's has
        return None
    trunks, panis = fields.get("trunk", []), fields.get("pani", [""])
    if len(trunks) != 1 or len(panis) != 1:
        return None
    return Question(trunks[0], panis[0])


def regency_of(question: Question, trusted: Mapping[str, bool], routes: RouteTable) -> str | None:
    """The caller's regency by the routing table, or None. The table may raise."""
    cell = routable_cell(
        parse_access_network_info(question.pani), trusted_trunk=trusted.get(question.trunk, False)
    )
    return routes.regency_for(cell) if cell is not None else None


class RegencySets:
    """Answers the edge's question; never raises on call data or a broken table."""

    def __init__(self, cluster: Cluster, trusted: Mapping[str, bool], routes: RouteTable) -> None:
        self._cluster = cluster
        self._trusted = dict(trusted)
        self._routes = routes

    def answer(self, query: str) -> str:
        """The dispatcher set for the call `query` describes, as Kamailio reads it."""
        question = parse_question(query)
        code: str | None = None
        if question is not None:
            try:
                code = regency_of(question, self._trusted, self._routes)
            except Exception:
                # A broken table must not keep a caller from a human: every node, then.
                log.exception("edge.regency_lookup_failed", trunk=question.trunk)
        set_id = self._cluster.route_set(code)
        log.info("edge.regency", regency=code or "", set=set_id)
        return str(set_id)


def sets_for(config: Config, routes: RouteTable) -> RegencySets | None:
    """The edge's question as this config answers it, or None for a single node."""
    cluster = cluster_of(config)
    if cluster is None:
        return None
    trunks = load_trunks(resolve_path(config.asterisk.trunks_file), config)
    return RegencySets(cluster, {t.name: t.trust_location for t in trunks}, routes)
