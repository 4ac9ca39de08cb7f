"""What the edge needs to render for several Asterisk nodes (config/cluster.toml, issue 18):
the dispatcher list and the probing settings of kamailio.cfg's `#!ifdef CLUSTER` blocks.

Kamailio probes every node with OPTIONS to 112@node; a node that misses PROBES_TO_DOWN
probes in a row (or answers 5xx: Asterisk says 503 while it shuts down) takes no new call
until it has answered PROBES_TO_UP in a row. A call sent to a node that does not answer, or
answers 5xx, goes on to the next node of its set at once (failure_route[NODE_FAILED]).

Asterisk knows the edge's requests only by the trunk header (X-Telephony-Trunk), and
dispatcher sends its probes with no header of ours, so they would be challenged (401): the
probes go to Kamailio itself first (dispatcher's outbound_proxy, edge.probe_port), which
relays them to the node as the default trunk's (route[PROBE]).

A probe's transaction timeout is tm's global fr_timer, which dispatcher offers no way to set
apart (kamailio#3446): in a cluster it is PROBE_TIMEOUT_MS, and the script gives every
transaction it creates itself RELAY_TIMEOUT_MS again (t_set_fr), an INVITE to a node
NODE_ANSWER_MS. So a dead node leaves its sets within about
PING_INTERVAL_S + PROBES_TO_DOWN * PROBE_TIMEOUT_MS (measured: 2.4-2.8 s), and a call
placed meanwhile waits NODE_ANSWER_MS longer, then reaches the next node.

Every node's queues reach the operators through the edge, and no node knows what the others
offer them: the edge lets one call at a time reach an operator, from whichever node, with a
dialog profile (OPERATOR_PROFILE) keyed by operator id, and answers any other INVITE to that
operator at once with 486 OPERATOR_BUSY_REASON (route[OPERATOR_FREE]).
"""

from __future__ import annotations

from pathlib import Path

from telephony.cluster.nodes import Cluster, dispatcher_list, load
from telephony.config import Config, resolve_path
from telephony.pbx.trunks import default_trunk

# ds_ping_interval: every node is asked this often, in seconds (the module's unit).
PING_INTERVAL_S = 1
# tm's fr_timer in a cluster: how long a probe waits for its answer (UDP retransmits at
# 500 ms, so a single lost packet does not fail a probe).
PROBE_TIMEOUT_MS = 1000
# ds_probing_threshold: failed probes in a row before a node takes no new call; two, so one
# probe lost on a loaded network does not move a regency.
PROBES_TO_DOWN = 2
# ds_inactive_threshold: answered probes in a row before a node takes calls again.
PROBES_TO_UP = 2
# How long an INVITE waits for a node's first answer (Asterisk sends 100 Trying at once)
# before the next node is tried.
NODE_ANSWER_MS = 1000
# Every other transaction's fr_timer, cluster or not: a trunk's or a phone's answer.
RELAY_TIMEOUT_MS = 5000
LIST_FILE = "dispatcher.list"
# The dialog profile of the calls each operator is being offered or is on (kamailio.cfg
# route[OPERATOR_FREE]), and the reason phrase of the edge's 486 to a node that offers one
# more: it reads apart from a phone's own 486 in a node's SIP history.
OPERATOR_PROFILE = "operator"
OPERATOR_BUSY_REASON = "Operator On Another Call"


def cluster_of(config: Config) -> Cluster | None:
    """The cluster the edge routes to, or None for a single node (no cluster.file)."""
    return load(resolve_path(config.cluster.file))


def template_values(
    config: Config, cluster: Cluster | None, list_file: Path
) -> dict[str, object] | None:
    """The `#!ifdef CLUSTER` part of kamailio.cfg, or None for a single node."""
    if cluster is None:
        return None
    return {
        "list_file": list_file,
        # Probes reach Asterisk as the default trunk's requests (its own trunk endpoint).
        "probe_trunk": default_trunk(config).name,
        "all_set": cluster.all_set,
        "ping_interval_s": PING_INTERVAL_S,
        "probe_timeout_ms": PROBE_TIMEOUT_MS,
        "probes_to_down": PROBES_TO_DOWN,
        "probes_to_up": PROBES_TO_UP,
        "node_answer_ms": NODE_ANSWER_MS,
        "operator_profile": OPERATOR_PROFILE,
        "busy_reason": OPERATOR_BUSY_REASON,
    }


def list_text(cluster: Cluster, marker: str) -> str:
    """The dispatcher list file, `marker` first (the mark of a file telephony wrote)."""
    return f"{marker}\n{dispatcher_list(cluster)}"
