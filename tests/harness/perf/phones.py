"""The bench's operators: one SIPp that answers for all of them.

Each operator first registers (digest auth, one SIPp UAC call per operator) from the port
that the operator SIPp then listens on, so every contact points at it. That SIPp keeps the
registrations fresh: its own calls re-register every operator each ``REFRESH_S``, as a
phone does, because the edge grants ``MAX_EXPIRES_S`` at most; without it every phone was
gone from the edge two minutes into a run, and the soak's callers were never rung. Every
request it did not start (a ring, a qualify OPTIONS) is played by the operator scenario
(SIPp -oocsf): it logs each ring with the caller's number, answers after ``answer_ms`` and
holds until Asterisk hangs up, and answers the qualify, which keeps the contacts reachable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from telephony.edge.phones import MAX_EXPIRES_S
from tests.harness import sipp
from tests.harness.net import free_udp

REGISTER_RATE = 200
REGISTER_LIMIT_S = 60.0
REFRESH_S = MAX_EXPIRES_S // 2
# SIPp holds back its own new calls (here: the refreshes) while this many calls are open;
# the rings it answers count too, so the bound is far above any bench's concurrency.
OPEN_CALLS = 100_000


class PhoneError(Exception):
    """The operators could not register."""


class Phones:
    def __init__(
        self,
        target: str,
        accounts: Sequence[tuple[str, str]],
        workdir: Path,
        *,
        answer_ms: int,
        limit_s: float,
    ) -> None:
        self.target = target
        self.accounts = tuple(accounts)
        self.workdir = workdir
        self.answer_ms = answer_ms
        self.limit_s = limit_s
        self.port = free_udp()
        self.uas: sipp.Sipp | None = None

    def start(self) -> Phones:
        if not self.accounts:
            return self
        scenarios = self.workdir / "scenarios"
        self.workdir.mkdir(parents=True, exist_ok=True)
        inf = self.workdir / "operators.csv"
        # Passwords go in through the injection file: SIPp does not expand keywords nested
        # inside [authentication username=... password=...] in a scenario.
        inf.write_text("SEQUENTIAL\n" + "".join(
            f"{op};[authentication username={op} password={password}]\n"
            for op, password in self.accounts
        ))  # fmt: skip
        register = sipp.Sipp(
            "register", sipp.render("register.xml", scenarios), self.target,
            source="127.0.0.1", port=self.port, workdir=self.workdir,
            args=("-inf", str(inf), "-m", str(len(self.accounts)), "-r", str(REGISTER_RATE),
                  "-l", str(REGISTER_RATE), "-aa"),
            limit_s=REGISTER_LIMIT_S,
        ).start()  # fmt: skip
        code = register.wait()
        counts = register.counts()
        if code != 0 or counts is None or counts.successful != len(self.accounts):
            raise PhoneError(
                f"operators did not all register (sipp exit {code}): {register.errors()}"
            )
        operator = sipp.render("operator.xml", scenarios, answer_ms=self.answer_ms)
        self.uas = sipp.Sipp(
            "operators", sipp.render("register.xml", scenarios), self.target,
            source="127.0.0.1", port=self.port, workdir=self.workdir,
            args=("-inf", str(inf), "-r", str(len(self.accounts)),
                  "-rp", str(REFRESH_S * 1000), "-l", str(OPEN_CALLS),
                  "-oocsf", str(operator), "-mp", str(free_udp())),
            limit_s=self.limit_s,
        ).start()  # fmt: skip
        return self

    def stop(self) -> None:
        if self.uas is not None:
            self.uas.stop()

    @property
    def pid(self) -> int | None:
        return self.uas.pid if self.uas is not None else None

    def rings(self) -> list[sipp.Mark]:
        return self.uas.marks() if self.uas is not None else []
