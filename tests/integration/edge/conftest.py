"""The sandbox (edge mode, the default: a real Kamailio in front of Asterisk, free ports).

Two trunks: the default "mno" at 127.0.0.2 and "telco2" at 127.0.0.4. Kamailio talks to
Asterisk from 127.0.0.10, the only address Asterisk accepts trunk calls from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from telephony.edge.phones import QUALIFY_REASONS
from telephony.edge.process import Kamailio
from telephony.edge.render import EdgeError
from telephony.edge.stats import EdgeStats
from telephony.pbx.provision import AsteriskInstall
from tests.harness.sandbox import Sandbox, start_sandbox
from tests.harness.sipp import run_scenario

TRUNKS = """\
[[trunk]]
name = "telco2"
networks = ["127.0.0.4/32"]
"""


@dataclass
class Edge:
    box: Sandbox
    kamailio: Kamailio

    @property
    def target(self) -> str:
        return f"{self.box.config.edge.bind}:{self.box.config.edge.port}"

    def stats(self) -> EdgeStats:
        return self.kamailio.rpc.statistics()

    def forget_validator_failure(self) -> None:
        """Make the edge ask serve again at once: it skips the PIDF-LO question for 5 s after a
        miss, and the registration's qualify request on a flag of its own (route[QUALIFY_NOW])."""
        for key in ("down", "qualify_down"):
            try:
                self.kamailio.rpc.call("htable.delete", "validator", key)
            except EdgeError as exc:
                if "not found" not in str(exc).lower():
                    raise

    def asterisk_history(self) -> str:
        """Every SIP message Asterisk received or sent since the edge fixture started."""
        return self.box.asterisk.cli("pjsip show history")


HOSTILE = "uac_hostile.xml"


_ENTRY = re.compile(r"^(\d{5}) \d+ \* (<==|==>) (\S+)\s+(.*)$", re.MULTILINE)


_EDGE_QUALIFY_REASONS = frozenset(QUALIFY_REASONS.values())


def _qualify(way: str, line: str) -> bool:
    """Asterisk's own qualify OPTIONS (to the operators' phones, through the edge), or the
    edge's answer to one."""
    if way == "==>":
        return line.startswith("OPTIONS ")
    return line.startswith("SIP/2.0 ") and line.split(" ", 2)[-1] in _EDGE_QUALIFY_REASONS


def history(edge: Edge) -> list[tuple[int, str, str]]:
    """Asterisk's pjsip history: (number, peer address, first line) of every SIP message,
    but for qualifies of the operators' phones and the edge's answers to them."""
    return [(int(n), peer, line) for n, way, peer, line in _ENTRY.findall(edge.asterisk_history())
            if not _qualify(way, line)]


def hostile(edge: Edge, source: str = "127.0.0.2", **keys: str) -> tuple[bool, str]:
    values = {"ruri": "112", "from": "081234567890", "display": "", "to": "112",
              "pai": "X-None: 1", **keys}
    extra: list[str] = ["-d", "3000"]
    for key, value in values.items():
        extra += ["-key", key, value]
    result = run_scenario(HOSTILE, edge.target, source=source, workdir=edge.box.workdir,
                          extra=tuple(extra), timeout_s=20)
    return result.ok, result.output + result.errors


def start_edge(install: AsteriskInstall, root: Path, *overrides: str) -> Edge:
    root.mkdir(parents=True, exist_ok=True)
    trunks = root / "trunks.toml"
    trunks.write_text(TRUNKS)
    box = start_sandbox(install, root, f"asterisk.trunks_file={trunks}", *overrides)
    assert box.edge is not None, "the edge is the default"
    try:
        box.asterisk.cli("pjsip set history on")
    except BaseException:
        box.stop()
        raise
    return Edge(box, box.edge)


def stop_edge(edge: Edge) -> None:
    edge.box.stop()


@pytest.fixture(scope="module")
def edge(
    asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    """The defaults: location by value on, as the edge is what makes it safe."""
    found = start_edge(asterisk_install, tmp_path_factory.mktemp("edge"))
    try:
        yield found
    finally:
        stop_edge(found)


@pytest.fixture
def quiet_edge(edge: Edge) -> Iterator[Edge]:
    """The module's edge, checked after the test for channels left behind."""
    yield edge
    left = edge.box.wait_no_channels()
    assert left == 0, f"{left} channel(s) leaked:\n{edge.box.asterisk.cli('core show channels')}"
