"""The edge's regency question in a cluster: from a call's cell to its dispatcher set (pure
code, and the HTTP endpoint Kamailio asks)."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from telephony.cluster.nodes import Cluster, load
from telephony.edge.pidf import REGENCY_PATH, PidfValidator
from telephony.edge.regency import Question, RegencySets, parse_question
from telephony.location.cell import CellId
from telephony.location.store import MemoryRouteTable
from telephony.resources import shipped

MALANG_CELL = "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=510100A010000001; network-provided"
ROUTES = MemoryRouteTable({(510, 10, 2561, None): "35.73", (510, 10, 4660, 74565): "35.78"})
TRUSTED = {"mno": True, "telco2": False}


def _cluster() -> Cluster:
    cluster = load(shipped("config/cluster.example.toml"))
    assert cluster is not None
    return cluster


def _query(trunk: str, pani: str) -> str:
    return urlencode({"trunk": trunk, "pani": pani})


class _Broken:
    def regency_for(self, cell: CellId) -> str | None:
        raise RuntimeError("the table is gone")


def test_a_regency_maps_to_its_set_and_anything_else_to_every_node() -> None:
    cluster = _cluster()
    assert [cluster.route_set(code) for code in ("35.73", "35.78")] == [1, 2]
    assert cluster.route_set("35.07") == cluster.route_set(None) == cluster.all_set == 3


@pytest.mark.parametrize(("trunk", "pani", "answer"), [
    ("mno", MALANG_CELL, "1"),
    ("mno", "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=5101012340001234; network-provided", "3"),
    # The handset's own word, or a trunk not trusted with location, routes nothing.
    ("mno", MALANG_CELL.replace("; network-provided", ""), "3"),
    ("telco2", MALANG_CELL, "3"),
    ("unknown-trunk", MALANG_CELL, "3"),
    ("mno", "", "3"),
    ("mno", "\r\n;;;", "3"),
])  # fmt: skip
def test_the_set_follows_the_network_provided_cell_of_a_trusted_trunk(
    trunk: str, pani: str, answer: str
) -> None:
    assert RegencySets(_cluster(), TRUSTED, ROUTES).answer(_query(trunk, pani)) == answer


def test_a_malformed_question_or_a_broken_table_answers_every_node() -> None:
    assert parse_question("trunk=mno&trunk=x&pani=") is None
    assert parse_question("pani=x") is None
    assert parse_question(_query("mno", "x")) == Question("mno", "x")
    assert RegencySets(_cluster(), TRUSTED, ROUTES).answer("trunk=a&trunk=b") == "3"
    assert RegencySets(_cluster(), TRUSTED, _Broken()).answer(_query("mno", MALANG_CELL)) == "3"


def test_the_edge_asks_over_http_and_reads_the_first_line() -> None:
    sets = RegencySets(_cluster(), TRUSTED, ROUTES)
    server = PidfValidator("127.0.0.1", 0, regency=sets.answer)
    server.start()
    try:
        host, port = server.address
        url = f"http://{host}:{port}{REGENCY_PATH}?{_query('mno', MALANG_CELL)}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert (answer.status, answer.read()) == (200, b"1\n")
    finally:
        server.stop()


def test_without_a_cluster_the_question_is_not_answered() -> None:
    server = PidfValidator("127.0.0.1", 0)
    server.start()
    try:
        host, port = server.address
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"http://{host}:{port}{REGENCY_PATH}?trunk=mno", timeout=5)
    finally:
        server.stop()
