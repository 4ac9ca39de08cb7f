"""A whole 112 centre on loopback for the bench and the drills.

An isolated sandbox Asterisk (own runtime directory, free ports) rendered from our
dialplans, with the SIP edge (Kamailio) in front of it as by default (``direct=True``: the
trunk calls Asterisk itself), the audit store, the routing table, a roster of bench
operators all in one regency and logged in, and the operators' phones. ``baseline=True``
renders the same centre with ``[emergency-112]`` reduced to Answer and Queue: no AGI, and
no service attached to AMI while calls run. The service itself is started by the caller
(bench or drill).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from telephony.config import resolve_path
from telephony.control import ami_session
from telephony.edge.process import Kamailio
from telephony.location import import_routes, load_regions, queue_name
from telephony.operators import presence
from telephony.operators.roster import load_roster
from telephony.pbx import sandbox
from telephony.pbx.layout import Layout
from telephony.pbx.process import Asterisk
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.render import queues
from telephony.pbx.sandbox import layout_for
from telephony.resources import shipped
from telephony.store import open_database
from tests.harness.perf.phones import PhoneError, Phones
from tests.harness.perf.pinning import Pinning, pin
from tests.harness.sandbox import DIRECT, asterisk_target, phone_target, sandbox_config
from tests.harness.service import ServeProcess

ROUTES = shipped("config/routing.example.csv")
REGENCY = "35.73"
CELL = "510100A010000001"
"""A cell whose whole area routes to Kota Malang (35.73) in config/routing.example.csv."""
RINGABLE_S = 30.0
"""How long every operator's contact may take to become Avail once the phones registered."""
AVAIL = re.compile(r"^\s*Contact:\s+([^/\s]+)/\S+\s+\S+\s+Avail\b", re.MULTILINE)
BASELINE = """[emergency-112]
; Bench baseline: the pure dialplan our figures are compared with.
exten => s,1,Answer()
 same => n,Queue({queue})
 same => n,Hangup()

"""


@dataclass(frozen=True)
class Staff:
    count: int
    answer_ms: int = 1000
    wrapup_s: int = 5


def accounts(count: int) -> list[tuple[str, str]]:
    return [(f"bop{n:03d}", f"bench-{n:03d}") for n in range(1, count + 1)]


def roster_text(count: int, regency: str = REGENCY) -> str:
    return "".join(
        f'[[operator]]\nid = "{op}"\nregency = "{regency}"\npassword = "{password}"\n\n'
        for op, password in accounts(count)
    )


def baseline_dialplan(text: str, queue: str) -> str:
    """``text`` (rendered extensions_112.conf) with [emergency-112] replaced by the baseline."""
    out: list[str] = []
    replaced = skipping = False
    for line in text.splitlines(keepends=True):
        header = re.match(r"\[([^\]]+)\]", line)
        if header:
            skipping = header.group(1) == "emergency-112"
            if skipping:
                out.append(BASELINE.format(queue=queue))
                replaced = True
                continue
        if not skipping:
            out.append(line)
    if not replaced:
        raise ValueError("no [emergency-112] context to replace")
    return "".join(out)


class Centre:
    def __init__(
        self,
        install: AsteriskInstall,
        root: Path,
        staff: Staff,
        *,
        baseline: bool = False,
        database_url: str | None = None,
        overrides: Sequence[str] = (),
        limit_s: float = 900.0,
        pinning: Pinning | None = None,
        direct: bool = False,
    ) -> None:
        self.install = install
        self.pinning = pinning
        self.root = root
        self.staff = staff
        self.baseline = baseline
        self.limit_s = limit_s
        root.mkdir(parents=True, exist_ok=True)
        roster = root / "operators.toml"
        roster.write_text(roster_text(staff.count))
        database = database_url or f"sqlite:///{root / 'telephony.db'}"
        self.config = sandbox_config(
            root,
            f"audit.database_url={database}",
            f"operators.file={roster}",
            f"operators.wrapup_s={staff.wrapup_s}",
            *(DIRECT if direct else ()),
            *overrides,
            short_timers=False,
        )
        self.layout = layout_for(self.config)
        self.asterisk = Asterisk(install, self.layout)
        self.edge = Kamailio(self.config) if self.config.edge.enabled else None
        self.phones = Phones(
            self.phone_target, accounts(staff.count), root / "phones",
            answer_ms=staff.answer_ms, limit_s=limit_s,
        )  # fmt: skip
        self.services: list[ServeProcess] = []

    @property
    def sip_target(self) -> str:
        """Where the trunk's callers send: the edge, or Asterisk in direct mode."""
        if self.edge is not None:
            return f"{self.config.edge.bind}:{self.config.edge.port}"
        return self.asterisk_target

    @property
    def phone_target(self) -> str:
        """Where the operators register: the edge's phone port by default, or Asterisk."""
        return phone_target(self.config, edge_running=self.edge is not None)

    @property
    def asterisk_target(self) -> str:
        """Asterisk itself, for calls that go round the edge on purpose."""
        return asterisk_target(self.config)

    @property
    def queue(self) -> str:
        return queue_name(REGENCY)

    def __enter__(self) -> Centre:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> Centre:
        self.asterisk = sandbox.start(
            self.config, self.install, edit=self.use_baseline if self.baseline else None
        )
        if self.edge is not None:
            self.edge.start()
        self.prepare_database()
        self.phones.start()
        if self.baseline:
            self.restore_presence()
        self.wait_ringable()
        return self

    def wait_ringable(self) -> None:
        """Every operator's contact Avail before the first call.

        Behind the edge a phone is ringable only once Asterisk has qualified its AOR through
        the edge. The phones register before any serve runs, so nothing tells Asterisk to
        qualify them then, and each AOR waited for its own 5 s qualify cycle: calls of the
        first seconds met a queue with one or two ringable operators (seen: the smoke's
        callers abandoned unrung). Asked here, as serve asks on each registration."""
        ops = [op for op, _password in accounts(self.staff.count)]
        with ami_session(self.config) as ami:
            for op in ops:
                ami.send_action("PJSIPQualify", Endpoint=op)
        deadline = time.monotonic() + RINGABLE_S
        while True:
            avail = set(AVAIL.findall(self.asterisk.cli("pjsip show contacts")))
            missing = [op for op in ops if op not in avail]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise PhoneError(
                    f"{len(missing)} of {len(ops)} operators' contacts never "
                    f"became Avail within {RINGABLE_S:.0f}s: {missing[:5]}"
                )
            time.sleep(0.1)  # qualify results reach the CLI with no event to the harness

    def use_baseline(self, layout: Layout) -> None:
        path = layout.etc / "extensions_112.conf"
        path.write_text(baseline_dialplan(path.read_text(), self.queue))

    def prepare_database(self) -> None:
        """Routes (so the IVR finds the caller's regency) and every operator logged in."""
        engine = open_database(self.config)
        try:
            import_routes(engine, ROUTES, regions=load_regions(self.regions_file))
            for op, _password in accounts(self.staff.count):
                presence.set_state(engine, op, presence.State.AVAILABLE)
        finally:
            engine.dispose()

    @property
    def regions_file(self) -> Path:
        return resolve_path(self.config.location.regions_file)

    def restore_presence(self) -> None:
        """What the service does at each AMI login, done once by a short-lived session."""
        regions = load_regions(self.regions_file)
        roster = load_roster(resolve_path(self.config.operators.file), regions)
        engine = open_database(self.config)
        try:
            with ami_session(self.config) as ami:
                presence.restore(ami, roster, presence.states(engine), regions, queues(self.config))
        finally:
            engine.dispose()

    def serve(self, name: str, *, probe_out: Path | None = None) -> ServeProcess:
        service = ServeProcess(self.config, self.root / f"{name}.log", probe_out=probe_out)
        self.services.append(service)
        return service

    def pids(self) -> dict[str, int]:
        found = {"asterisk": pid} if (pid := self.asterisk.pid()) else {}
        if self.edge is not None and (edge_pid := self.edge.pid()):
            found["kamailio"] = edge_pid
        live = [s for s in self.services if s.proc.poll() is None]
        if live:
            found["serve"] = live[-1].pid
        return found

    def pin(self, *load_pids: int | None) -> None:
        """With ``pinning``: Asterisk, Kamailio and serve on the platform's CPUs, the
        operators' SIPp and ``load_pids`` (the callers' SIPp) on the load's."""
        if self.pinning is None:
            return
        for pid in self.pids().values():
            pin(pid, self.pinning.platform)
        for load_pid in (self.phones.pid, *load_pids):
            if load_pid is not None:
                pin(load_pid, self.pinning.load)

    def stop(self) -> None:
        for service in self.services:
            service.stop()
        self.phones.stop()
        self.asterisk.stop()
        if self.edge is not None:
            self.edge.stop()
