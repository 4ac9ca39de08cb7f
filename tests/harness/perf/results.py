"""The bench's result file: its schema, the issue's targets, comparison with a previous run.

A result is one JSON object (``SCHEMA``): ``conditions`` (machine and load), ``phases``
(``ours`` and ``baseline``, each with percentiles), ``ratios`` (ours / baseline, the
headline), ``capacity``, ``ingest`` and ``targets`` (each: figure, bar, met or not).
Comparison flattens two results into dotted paths and reports what moved.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

SCHEMA = "telephony-bench/1"
# A change beyond this fraction is called out as a regression or an improvement.
NOTABLE = 0.10
# Flattened paths the comparison always shows, in this order.
HEADLINE = (
    "ratios.setup_p50", "ratios.setup_p95", "ratios.setup_p99",
    "phases.ours.setup_ms.p99", "phases.ours.ring_silent_s.p99", "phases.ours.key_to_ring_s.p99",
    "phases.ours.agi_ms.p99", "phases.ours.audit_lag_ms.p99",
    "phases.ours.usage.asterisk.cpu_percent", "phases.ours.usage.serve.cpu_percent",
    "phases.ours.usage.serve.rss_growth_mb", "capacity.rate_cps",
    "ingest.sqlite.events_per_s", "ingest.postgresql.events_per_s",
)  # fmt: skip
_HIGHER_IS_BETTER = ("rate_cps", "events_per_s", "successful")
# Beyond the headline, the comparison reports these figures when they move notably.
_DETAIL_ENDINGS = (".p50", ".p95", ".p99", ".failed", ".failed_open", ".unrung",
                   ".unrung_silent", ".unrung_key", ".cpu_percent", ".rss_growth_mb")
# Quick mode places a lighter load than the targets are stated for.
TARGET_RATE_CPS = 10.0
TARGET_WINDOW_S = 120.0
TARGET_CONCURRENT = 200
# Commands that neither play audio nor wait for the caller: the per-command round trip.
AGI_PLAIN_COMMANDS = ("GET FULL VARIABLE", "GET VARIABLE", "SET VARIABLE")


@dataclass(frozen=True)
class Target:
    key: str
    text: str
    figure: float | None
    unit: str
    bar: float
    higher_is_better: bool = False
    note: str = ""
    assessed: bool = True
    """False when the run's conditions are not those the target is stated for."""
    missed: bool = False
    """Missed whatever the figure says (e.g. callers who never rang are not in a p99)."""

    @property
    def met(self) -> bool | None:
        if not self.assessed:
            return None
        if self.missed:
            return False
        if self.figure is None:
            return None
        return self.figure >= self.bar if self.higher_is_better else self.figure <= self.bar

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "text": self.text, "figure": self.figure, "unit": self.unit,
                "bar": self.bar, "met": self.met, "assessed": self.assessed, "note": self.note}


def _ring_target(key: str, text: str, ours: Mapping[str, Any], figure_path: str, mode: str,
                 bar: float, note: str, assessed: bool) -> Target:  # fmt: skip
    """A ring-time target: its p99 only counts callers who rang, so when more than 1% of the
    callers of that kind never rang during their call, the p99 cannot be met."""
    rang = int(_number(dig(ours, f"{figure_path}.count")) or 0)
    unrung = int(_number(dig(ours, f"calls.unrung_{mode}")) or 0)
    missed = unrung > 0.01 * (rang + unrung)
    if missed:
        note = "; ".join(filter(None, (
            f"{unrung} of {rang + unrung} {mode} callers never rang an operator during their "
            "call (the figure is over those who did)", note)))
    return Target(key, text, _number(dig(ours, f"{figure_path}.p99")), "s", bar, note=note,
                  assessed=assessed, missed=missed)


def dig(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def ratio(ours: Any, base: Any) -> float | None:
    a, b = _number(ours), _number(base)
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 3)


def targets(result: Mapping[str, Any]) -> list[Target]:
    """The issue's targets, judged on this result. A bar is never moved: when the run did
    not place the load a target is stated for, the figure is kept and ``assessed`` is False."""
    ours = dig(result, "phases.ours") or {}
    load = ours.get("load", {})
    at_target_load = (
        (_number(load.get("rate_cps")) or 0) >= TARGET_RATE_CPS
        and (_number(load.get("window_s")) or 0) >= TARGET_WINDOW_S
        and (_number(dig(ours, "calls.peak_concurrent")) or 0) >= TARGET_CONCURRENT
    )
    load_note = "" if at_target_load else (
        f"run at {load.get('rate_cps')} calls/s for {load.get('window_s')} s, peak "
        f"{dig(ours, 'calls.peak_concurrent')} concurrent: not the target's load (use the full run)"
    )  # fmt: skip
    ingest_sqlite = dig(result, "ingest.sqlite") or {}
    lossless = ingest_sqlite.get("lost") == 0 and ingest_sqlite.get("verified") is True
    return [
        Target("zero_failed", "zero failed calls at 10 calls/s for 2 min, full IVR path, "
               "200 concurrent", _number(dig(ours, "calls.failed")), "calls", 0,
               note=load_note, assessed=at_target_load),
        _ring_target("silent_ring_p99", "silent caller rung at an operator within 12 s of "
                     "INVITE (p99)", ours, "ring_silent_s", "silent", 12.0, load_note,
                     at_target_load),
        _ring_target("key_ring_p99", "key-press caller rung within 3 s of the key (p99)", ours,
                     "key_to_ring_s", "key", 3.0, load_note, at_target_load),
        Target("agi_p99", "FastAGI per-command round trip p99 (" + ", ".join(AGI_PLAIN_COMMANDS)
               + ")", _number(dig(ours, "agi_ms.p99")), "ms", 5.0),
        Target("audit_lag_p99", "AMI event to committed audit row p99",
               _number(dig(ours, "audit_lag_ms.p99")), "ms", 1000.0),
        Target("ingest_sqlite", "audit ingest on SQLite with zero loss",
               _number(ingest_sqlite.get("events_per_s")) if lossless else None, "events/s",
               2000.0, higher_is_better=True,
               note="" if lossless else "events were lost or the chain did not verify"),
        *(Target(f"setup_ratio_{p}", f"session request delay {p} within 1.5x the baseline",
                 _number(dig(result, f"ratios.setup_{p}")), "x", 1.5)
          for p in ("p50", "p95", "p99")),
        *_issue19(result),
        *([Target("incident_webhook_p99", "incident created to its webhook delivered p99 "
                  "(receiver up)", _number(dig(result, "incidents.created_to_delivered_s.p99")),
                  "s", 1.0)] if "incidents" in result else []),
        *(Target(f"edge_ratio_{p}", f"INVITE->200 {p} through the edge within 1.1x without it",
                 _number(dig(result, f"edge.ratios.{p}")), "x", 1.1)
          for p in ("p50", "p95")),
    ]  # fmt: skip


def _issue19(result: Mapping[str, Any]) -> list[Target]:
    """Issue 19's bars: PostgreSQL ingest, SQLite kept, Asterisk CPU, capacity, both ratios
    to the baseline measured in the same run."""
    found = []
    for name, bar in (("postgresql", 10_000.0), ("sqlite", 6000.0)):
        run = dig(result, f"ingest.{name}") or {}
        lossless = run.get("lost") == 0 and run.get("verified") is True
        found.append(Target(
            f"ingest_{name}_19", f"audit ingest on {name} with zero loss (issue 19)",
            _number(run.get("events_per_s")) if lossless else None, "events/s", bar,
            higher_is_better=True,
            note="" if lossless else "not run, events lost or the chain did not verify"))
    found.append(Target("cpu_ratio", "Asterisk CPU per call within 1.3x the baseline (same load)",
                        _number(dig(result, "ratios.cpu_asterisk")), "x", 1.3))
    found.append(Target("capacity_ratio", "capacity (no call failed or failed open) at least "
                        "0.9x the baseline's, same rule, same run",
                        _number(dig(result, "capacity_ratio")), "x", 0.9,
                        higher_is_better=True))
    return found


def flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from flatten(value, f"{prefix}{key}.")
    elif (number := _number(data)) is not None:
        yield prefix.rstrip("."), number


@dataclass(frozen=True)
class Change:
    path: str
    before: float
    after: float

    @property
    def relative(self) -> float | None:
        return (self.after - self.before) / abs(self.before) if self.before else None

    @property
    def better(self) -> bool:
        higher = any(word in self.path for word in _HIGHER_IS_BETTER)
        return self.after > self.before if higher else self.after < self.before

    @property
    def notable(self) -> bool:
        rel = self.relative
        return rel is not None and abs(rel) >= NOTABLE

    def line(self) -> str:
        rel = self.relative
        change = f"{rel:+.0%}" if rel is not None else "n/a"
        verdict = ("better" if self.better else "WORSE") if self.notable else "same"
        return f"{self.path}: {self.before:g} -> {self.after:g} ({change}, {verdict})"


def compare(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """Headline figures first, then the other percentiles, failures and usage that moved
    notably (per-command AGI figures, maxima and means stay in the files)."""
    old, new = dict(flatten(before)), dict(flatten(after))
    shared = [p for p in new if p in old and p.endswith(_DETAIL_ENDINGS)
              and not p.startswith(("targets.", "conditions.")) and "_by_command." not in p]
    head = [Change(p, old[p], new[p]) for p in HEADLINE if p in old and p in new]
    rest = [Change(p, old[p], new[p]) for p in shared if p not in HEADLINE]
    return head + [c for c in rest if c.notable]


def target_lines(found: list[Target]) -> list[str]:
    lines = []
    for t in found:
        verdict = {True: "MET", False: "MISSED", None: "NOT ASSESSED"}[t.met]
        figure = "no figure" if t.figure is None else f"{t.figure:g} {t.unit}"
        bar = f"{'>=' if t.higher_is_better else '<='} {t.bar:g} {t.unit}"
        note = f" — {t.note}" if t.note else ""
        lines.append(f"  [{verdict}] {t.text}: {figure} (bar {bar}){note}")
    return lines
