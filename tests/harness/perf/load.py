"""One load phase: callers from the trunk at a fixed rate, measured at the edges.

Every caller has its own number, so the caller SIPp's marks (INVITE sent, 200 received, key
pressed) and the operators' rings line up per call. Half the callers (``key_share``) press
1 half a second after the answer; the others stay silent and are queued when the IVR gives
up on them. Each hangs up ``hold_s`` after the answer.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness import sipp
from tests.harness.net import TRUNK, free_udp
from tests.harness.perf.centre import CELL, Centre
from tests.harness.perf.stats import Summary, summarize
from tests.harness.perf.usage import Sampler, Usage

IDENTITY = (
    "P-Asserted-Identity: <sip:[field0]@mno.example;user=phone>\n"
    "P-Access-Network-Info: 3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=[field1]; network-provided"
)
SDP_TYPE = "application/sdp"
SDP = "\n".join((
    "v=0", "o=caller 1 1 IN IP[local_ip_type] [local_ip]", "s=-",
    "c=IN IP[media_ip_type] [media_ip]", "t=0 0", "m=audio [media_port] RTP/AVP 0 101",
    "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16",
))  # fmt: skip
_LEADING_NUMBER = re.compile(r"\+?[0-9]+")
# SIPp's own bound on a phase: the placing window, the hold, a ring that comes late, margin.
MARGIN_S = 60.0
_runs = itertools.count(1)  # distinct caller numbers for every load of a process


@dataclass(frozen=True)
class Invite:
    """What the callers' INVITE carries besides the basics: the network's identity and
    location headers and an SDP offer, unless a drill sends something worse."""

    headers: str = IDENTITY
    content_type: str = SDP_TYPE
    body: str = SDP
    keys: tuple[tuple[str, str], ...] = ()
    """SIPp -key values, for text SIPp must not parse: a [key] in the scenario is replaced
    by its value as it stands (an XML DTD's brackets would read as SIPp keywords)."""
    user: str = "[field0]"
    """The From user part; the caller's number unless a drill forges it."""
    service: str = "[service]"
    """The Request-URI (and To) user part: 112 (SIPp -s) unless a drill forges it."""


@dataclass(frozen=True)
class Load:
    rate: float
    """Calls per second (RFC 7501's session attempt rate)."""
    calls: int
    hold_s: float
    """From the answer (200 OK) to the caller's BYE."""
    key_share: float = 0.5
    audio: bool = True
    """Callers stream a mu-law tone (RTP) for the whole call."""

    @property
    def window_s(self) -> float:
        return self.calls / self.rate

    def as_dict(self) -> dict[str, Any]:
        return {"rate_cps": self.rate, "calls": self.calls, "hold_s": self.hold_s,
                "key_share": self.key_share, "audio": self.audio,
                "window_s": round(self.window_s, 1)}  # fmt: skip


def callers(calls: int, key_share: float, prefix: str) -> list[tuple[str, str]]:
    """(number, "key" | "silent") per call; key callers spread evenly through the run."""
    out = []
    for i in range(calls):
        presses = math.floor((i + 1) * key_share) > math.floor(i * key_share)
        out.append((f"+628{prefix}{i:05d}", "key" if presses else "silent"))
    return out


@dataclass
class Timeline:
    """Per-call edge times, from the caller's and the operators' marks."""

    invite: dict[str, float] = field(default_factory=dict)
    answered: dict[str, float] = field(default_factory=dict)
    key: dict[str, float] = field(default_factory=dict)
    ring: dict[str, float] = field(default_factory=dict)
    """The first ring of each call at any operator."""

    @classmethod
    def of(cls, caller_marks: Sequence[sipp.Mark], rings: Sequence[sipp.Mark]) -> Timeline:
        line = cls()
        slots = {"invite": line.invite, "answered": line.answered, "key": line.key}
        for mark in caller_marks:
            slot = slots.get(mark.kind)
            if slot is not None:
                slot.setdefault(mark.number, mark.at)
        for mark in sorted(rings, key=lambda m: m.at):
            # A forged From reaches the operator filtered to number characters: the
            # caller's digits come first (hostile.MALFORMED "CR/LF in From").
            digits = _LEADING_NUMBER.match(mark.number)
            number = mark.number if mark.number in line.invite else digits and digits.group()
            if number and number in line.invite:
                line.ring.setdefault(number, mark.at)
        return line

    def setup_ms(self) -> list[float]:
        return [(self.answered[n] - t) * 1000 for n, t in self.invite.items()
                if n in self.answered]  # fmt: skip

    def ring_s(self, numbers: Sequence[str]) -> list[float]:
        return [self.ring[n] - self.invite[n] for n in numbers
                if n in self.ring and n in self.invite]  # fmt: skip

    def key_to_ring_s(self) -> list[float]:
        return [self.ring[n] - t for n, t in self.key.items() if n in self.ring]


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    load: Load
    counts: sipp.Counts | None
    setup_ms: Summary | None
    sipp_rtt_ms: Summary | None
    ring_s: Summary | None
    """INVITE to first ring, every answered call: the drills' time-to-operator."""
    ring_silent_s: Summary | None
    ring_key_s: Summary | None
    key_to_ring_s: Summary | None
    answered: int
    unrung: int
    """Answered calls that never rang at an operator."""
    unrung_silent: int
    unrung_key: int
    failed_open: int
    usage: Mapping[str, Usage]
    errors: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        if self.counts is None:
            return self.load.calls
        return self.counts.failed + max(0, self.load.calls - self.counts.created)

    def as_dict(self) -> dict[str, Any]:
        def s(value: Summary | None) -> dict[str, Any] | None:
            return value.as_dict() if value is not None else None

        counts = self.counts
        return {
            "load": self.load.as_dict(),
            "calls": {
                "attempted": self.load.calls,
                "created": counts.created if counts else 0,
                "successful": counts.successful if counts else 0,
                "answered": self.answered,
                "failed": self.failed,
                "failure_reasons": dict(counts.failures) if counts else {},
                "peak_concurrent": counts.peak_current if counts else 0,
                "retransmissions": counts.retransmissions if counts else 0,
                "unrung": self.unrung,
                "unrung_silent": self.unrung_silent,
                "unrung_key": self.unrung_key,
                "failed_open": self.failed_open,
            },
            "setup_ms": s(self.setup_ms),
            "sipp_rtt_ms": s(self.sipp_rtt_ms),
            "ring_s": s(self.ring_s),
            "ring_silent_s": s(self.ring_silent_s),
            "ring_key_s": s(self.ring_key_s),
            "key_to_ring_s": s(self.key_to_ring_s),
            "usage": {name: u.as_dict() for name, u in self.usage.items()},
            **self.extra,
        }


def failed_open_lines(centre: Centre) -> int:
    """How many calls the dialplan failed open so far (its WARNING in messages.log)."""
    path = centre.layout.log / "messages.log"
    if not path.exists():
        return 0
    with path.open(errors="replace") as fh:
        return sum(1 for line in fh if "IVR failed open" in line)


class Calls:
    """A load placed by one caller SIPp: started, then waited for and measured."""

    def __init__(
        self, centre: Centre, load: Load, workdir: Path, name: str, invite: Invite = Invite(),
        *, source: str = TRUNK, target: str | None = None,
    ) -> None:
        self.centre = centre
        self.load = load
        self.name = name
        self.people = callers(load.calls, load.key_share, f"12{next(_runs) % 100:02d}")
        directory = workdir / name
        directory.mkdir(parents=True, exist_ok=True)
        inf = directory / "callers.csv"
        inf.write_text("SEQUENTIAL\n" + "".join(f"{n};{CELL};{m}\n" for n, m in self.people))
        audio = ""
        if load.audio:
            tone = sipp.write_audio(directory / "tone.ulaw")
            audio = f'<nop><action><exec rtp_stream="{tone},-1,0"/></action></nop>'
        scenario = sipp.render(
            "caller.xml", directory, dtmf_pcap=sipp.DTMF_PCAP, audio=audio,
            headers=invite.headers, content_type=invite.content_type, body=invite.body,
            user=invite.user, service=invite.service,
        )  # fmt: skip
        concurrent = math.ceil(load.rate * (load.hold_s + 15)) + 50
        self.sipp = sipp.Sipp(
            "callers", scenario, target or centre.sip_target, source=source,
            port=free_udp(source), workdir=directory,
            args=("-s", "112", "-inf", str(inf), "-m", str(load.calls), "-r", f"{load.rate:g}",
                  "-d", str(int(load.hold_s * 1000)), "-l", str(concurrent),
                  "-mp", str(free_udp(source)),
                  *(arg for key, value in invite.keys for arg in ("-key", key, value))),
            limit_s=load.window_s + load.hold_s + MARGIN_S,
        )  # fmt: skip
        self._opened = 0
        self._sampler: Sampler | None = None

    def start(self) -> Calls:
        self._opened = failed_open_lines(self.centre)
        self._sampler = Sampler(self.centre.pids())
        self._sampler.start()
        self.sipp.start()
        self.centre.pin(self.sipp.pid)
        return self

    def timeline(self) -> Timeline:
        return Timeline.of(self.sipp.marks(), self.centre.phones.rings())

    def wait(self) -> Phase:
        """Wait for SIPp to place and end every call (bounded by its -timeout), then measure."""
        self.sipp.wait()
        usage = self._sampler.stop() if self._sampler is not None else {}
        line = self.timeline()
        answered = [n for n, _mode in self.people if n in line.answered]
        silent = [n for n, mode in self.people if mode == "silent" and n in line.answered]
        keyed = [n for n, mode in self.people if mode == "key" and n in line.answered]
        return Phase(
            name=self.name,
            load=self.load,
            counts=self.sipp.counts(),
            setup_ms=summarize(line.setup_ms()),
            sipp_rtt_ms=summarize(self.sipp.rtt_ms()),
            ring_s=summarize(line.ring_s(answered)),
            ring_silent_s=summarize(line.ring_s(silent)),
            ring_key_s=summarize(line.ring_s(keyed)),
            key_to_ring_s=summarize(line.key_to_ring_s()),
            answered=len(answered),
            unrung=sum(1 for n in answered if n not in line.ring),
            unrung_silent=sum(1 for n in silent if n not in line.ring),
            unrung_key=sum(1 for n in keyed if n not in line.ring),
            failed_open=failed_open_lines(self.centre) - self._opened,
            usage=usage,
            errors=self.sipp.errors(),
        )


def run(centre: Centre, load: Load, workdir: Path, name: str) -> Phase:
    """Place the load, wait for every call to end, and measure."""
    return Calls(centre, load, workdir, name).start().wait()
