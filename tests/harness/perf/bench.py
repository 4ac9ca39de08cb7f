"""`scripts/bench`: the load harness. See docs/performance.md for the method.

    python -m tests.harness.perf.bench [--quick] [--compare PREV.json] [--out FILE] [--direct]

Phases, each against a fresh sandbox, with the SIP edge (Kamailio) in front as by default
(--direct: the trunk calls Asterisk itself): our full path (IVR over FastAGI, the service on
AMI writing the audit); the same load against the pure-dialplan baseline; the capacity
search; the edge's cost (INVITE->200 with and without it, in one centre); the audit ingest
flood on SQLite and PostgreSQL. Every phase is bounded by SIPp's own
-timeout and by the profile's sizes, so a run always ends by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telephony import config as config_mod
from telephony import logs
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.sandbox import install_for
from tests.harness import CHECKOUT
from tests.harness.perf import (
    aml,
    capacity,
    consoles,
    edge,
    incidents,
    ingest,
    load,
    message,
    recording,
    results,
    soak,
)
from tests.harness.perf.centre import Centre, Staff
from tests.harness.perf.pinning import Pinning, bench_on, split
from tests.harness.perf.postgres import Cluster, PostgresError
from tests.harness.perf.stats import summarize
from tests.harness.sandbox import wait_no_channels

IDLE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Profile:
    name: str
    staff: Staff
    load: load.Load
    search: capacity.Search
    ingest_calls: int
    edge_calls: int
    direct: bool = False


QUICK = Profile(
    "quick",
    Staff(100),
    load.Load(rate=4, calls=80, hold_s=16),
    capacity.Search(start_cps=4, window_s=8, hold_s=6, key_share=1.0, max_cps=64,
                    resolution_cps=2, max_steps=4, budget_s=150),
    ingest_calls=1000,
    edge_calls=100,
)  # fmt: skip
FULL = Profile(
    "full",
    Staff(260),
    load.Load(rate=10, calls=1200, hold_s=20),
    capacity.Search(start_cps=5, window_s=60, hold_s=20, key_share=0.5, max_cps=80,
                    resolution_cps=1, max_steps=7, budget_s=720),
    ingest_calls=5000,
    edge_calls=300,
)  # fmt: skip
# --soak: 5 calls/s of a minute each (about 300 up at once) for 10 minutes; ours only.
SOAK = Profile(
    "soak",
    Staff(320),
    load.Load(rate=5, calls=3000, hold_s=60),
    QUICK.search,
    ingest_calls=0,
    edge_calls=0,
)  # fmt: skip


def wait_idle(centre: Centre) -> int:
    """Let the last calls' channels go before the next measurement; returns those left."""
    return wait_no_channels(centre.asterisk, IDLE_TIMEOUT_S)


def own_timings(path: Path) -> dict[str, Any]:
    """The service's AGI round trips and audit lag, from the probe's file."""
    data = json.loads(path.read_text())
    agi: dict[str, list[float]] = data["agi_ms"]
    plain = [s for cmd in results.AGI_PLAIN_COMMANDS for s in agi.get(cmd, [])]
    pooled = summarize(plain)
    lag = summarize(data["audit"]["lag_ms"])
    return {
        "agi_ms": pooled.as_dict(3) if pooled else None,
        "agi_ms_by_command": {cmd: s.as_dict(3) for cmd, samples in sorted(agi.items())
                              if (s := summarize(samples))},
        "audit_lag_ms": lag.as_dict(3) if lag else None,
        "audit": {k: v for k, v in data["audit"].items() if k != "lag_ms"},
    }  # fmt: skip


def ours(install: AsteriskInstall, work: Path, profile: Profile,
         pinning: Pinning | None = None) -> dict[str, Any]:  # fmt: skip
    with Centre(install, work / "ours", profile.staff, pinning=pinning,
                direct=profile.direct) as centre:  # fmt: skip
        probe = work / "ours" / "probe.json"
        service = centre.serve("serve", probe_out=probe).ready()
        phase = load.run(centre, profile.load, work, "ours-load")
        left = wait_idle(centre)
        service.stop()
        measured = phase.as_dict()
        measured.update(own_timings(probe), channels_left=left)
        measured["asterisk_version"] = centre.asterisk.cli("core show version").strip()
        return measured


def baseline(install: AsteriskInstall, work: Path, profile: Profile,
             pinning: Pinning | None = None) -> dict[str, Any]:  # fmt: skip
    with Centre(install, work / "baseline", profile.staff, baseline=True,
                pinning=pinning, direct=profile.direct) as centre:  # fmt: skip
        phase = load.run(centre, profile.load, work, "baseline-load")
        measured = phase.as_dict()
        measured["channels_left"] = wait_idle(centre)
        return measured


def capacity_search(install: AsteriskInstall, work: Path, profile: Profile,
                    pinning: Pinning | None = None, *, base: bool = False) -> dict[str, Any]:
    """The search on our centre, or (``base``) on the baseline's, by the same rule.

    Every trial has a centre of its own: a trial that overloaded the last one left its
    operators' SIPp and Asterisk in a state the next trial would measure (seen: after a
    failed trial, no call of the next rang an operator, and every later trial failed)."""
    search = profile.search
    name = "capacity-baseline" if base else "capacity"

    def trial(rate: float) -> capacity.Trial:
        label = f"{name}-{rate:g}"
        # A short root: Asterisk's control socket path must fit in 107 bytes (sun_path).
        root = work / f"{'cb' if base else 'c'}{rate:g}"
        with Centre(install, root, profile.staff, baseline=base,
                    pinning=pinning, direct=profile.direct) as centre:  # fmt: skip
            if not base:
                centre.serve("serve").ready()
            calls = max(1, round(rate * search.window_s))
            phase = load.run(centre, load.Load(rate, calls, search.hold_s, search.key_share),
                             work, label)  # fmt: skip
        passed = phase.failed == 0 and phase.failed_open == 0
        return capacity.Trial(rate, passed, {
            "calls": calls, "failed": phase.failed, "failed_open": phase.failed_open,
            "unrung": phase.unrung,
            "setup_ms_p99": phase.setup_ms.p99 if phase.setup_ms else None,
            "failure_reasons": dict(phase.counts.failures) if phase.counts else {},
        })  # fmt: skip

    return capacity.find(trial, search).as_dict()


def ingest_runs(work: Path, profile: Profile, postgres_url: str | None) -> dict[str, Any]:
    timeout = 600.0
    found: dict[str, Any] = {"sqlite": ingest.flood(
        f"sqlite:///{work / 'ingest' / 'audit.db'}", work / "ingest" / "sqlite",
        profile.ingest_calls, timeout_s=timeout).as_dict()}  # fmt: skip
    if postgres_url:
        found["postgresql"] = ingest.flood(postgres_url, work / "ingest" / "pg",
                                           profile.ingest_calls, timeout_s=timeout).as_dict()
        return found
    try:
        with Cluster() as cluster:
            found["postgresql"] = ingest.flood(cluster.url, work / "ingest" / "pg",
                                               profile.ingest_calls, timeout_s=timeout).as_dict()
    except PostgresError as exc:
        found["postgresql"] = {"skipped": str(exc)}
    return found


def conditions(profile: Profile) -> dict[str, Any]:
    return {
        "profile": profile.name,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "operators": profile.staff.count,
        "operator_answer_ms": profile.staff.answer_ms,
        "operator_wrapup_s": profile.staff.wrapup_s,
        "load": profile.load.as_dict(),
        "audit_database": "sqlite (file in the run's directory)",
        "network": "loopback; trunk 127.0.0.2, operators 127.0.0.1",
        "edge": "direct (no edge)" if profile.direct else "Kamailio in front of Asterisk",
    }


def ratios(ours_: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    found = {f"setup_{p}": results.ratio(results.dig(ours_, f"setup_ms.{p}"),
                                         results.dig(base, f"setup_ms.{p}"))
             for p in ("p50", "p95", "p99")}  # fmt: skip
    found["cpu_asterisk"] = results.ratio(results.dig(ours_, "usage.asterisk.cpu_percent"),
                                          results.dig(base, "usage.asterisk.cpu_percent"))
    return found


def summary(result: dict[str, Any]) -> str:
    lines = _load_lines(result) if {"ours", "baseline"} <= set(result["phases"]) else []
    unpinned = result.get("unpinned")
    if unpinned and lines:
        lines.insert(1, "  pinned (" + ", ".join(
            f"{k} {v}" for k, v in result["conditions"]["pinning"].items()) + "); unpinned: "
            + "; ".join(_unpinned_figures(unpinned)))  # fmt: skip
    for label, key in (("capacity", "capacity"), ("capacity, baseline", "capacity_baseline")):
        cap = result.get(key) or {}
        if not cap:
            continue
        cond = cap["conditions"]
        lines.append(
            f"  {label}: {cap['rate_cps']} calls/s with zero failed calls, none failed open "
            f"(lowest failing: {cap['failing_cps'] or 'none found'}); SIP alone: no failure up "
            f"to {cap['sip_only_rate_cps']} calls/s; {cond['window_s']} s windows, hold "
            f"{cond['hold_s']} s, {cond['key_share']:.0%} key, {len(cap['trials'])} trials"
            + (" (cut short by the time budget)" if cap.get("cut_short") else "")
        )
    if result.get("capacity_ratio") is not None:
        lines.append(f"  capacity ours / baseline: {result['capacity_ratio']}")
    for name, run in (result.get("ingest") or {}).items():
        if "skipped" in run:
            lines.append(f"  ingest {name}: skipped ({run['skipped']})")
        else:
            lines.append(f"  ingest {name}: {run['events_per_s']} events/s, {run['events']} "
                         f"events, lost {run['lost']}, chain verified {run['verified']}")
    if "soak" in result:
        found = result["soak"]
        drift = found["audit_lag_drift"]
        lines.append(f"  soak: peak {found['phase']['calls']['peak_concurrent']} concurrent; RSS "
                     f"growth MB per 1000 calls {found['rss_growth_mb_per_1000_calls']}; audit "
                     f"lag p99 by tenth {[s['p99'] for s in drift['slices']]} ms, flat: "
                     f"{drift['flat']}")  # fmt: skip
    if result.get("message"):
        lines += message.summary_lines(result["message"])
    if result.get("recording"):
        lines.append(recording.summary_line(result["recording"]))
    aml_run = result.get("aml")
    if aml_run:
        card = aml_run["accepted_to_card_ms"] or {}
        lines.append(
            f"  aml: accepted -> card p50 {card.get('p50')} / p99 {card.get('p99')} ms "
            f"({aml_run['sampled_fixes']} fixes, {aml_run['cards_missing']} missing; bar p99 "
            f"<= 500 ms); flood {aml_run['flood_fixes_per_s']} fixes/s (bar >= 500) with "
            f"INVITE->200 p99 {results.dig(aml_run, 'without_aml.invite_to_200_ms.p99')} -> "
            f"{results.dig(aml_run, 'with_aml.invite_to_200_ms.p99')} ms, audit lag p99 "
            f"{results.dig(aml_run, 'without_aml.audit_lag_ms.p99')} -> "
            f"{results.dig(aml_run, 'with_aml.audit_lag_ms.p99')} ms")
    cost = result.get("edge") or {}
    if cost.get("edge_ms") and cost.get("direct_ms"):
        e, d, r = cost["edge_ms"], cost["direct_ms"], cost["ratios"]
        lines.append(
            f"  edge: INVITE->200 ms p50/p95 {e['p50']:.3g}/{e['p95']:.3g} through Kamailio, "
            f"{d['p50']:.3g}/{d['p95']:.3g} without (x{r['p50']}/x{r['p95']}); Kamailio CPU "
            f"{cost['kamailio_cpu_ms_per_call']} ms per call; {cost['calls_each']} calls each"
        )
    lines += [f"  {part} FAILED: {error}" for part, error in result.get("errors", {}).items()]
    lines.append("targets:")
    lines += results.target_lines(results.targets(result))
    return "\n".join(lines)


def _load_lines(result: dict[str, Any]) -> list[str]:
    def triple(path: str, data: Any) -> str:
        values = [results.dig(data, f"{path}.{p}") for p in ("p50", "p95", "p99")]
        return "/".join("-" if v is None else f"{v:.3g}" for v in values)

    o, b = result["phases"]["ours"], result["phases"]["baseline"]
    c = result["conditions"]
    return [
        f"bench {c['profile']}: {c['cpus']} CPUs, load {c['load_average_before'][0]:.2f} before; "
        f"{c['load']['rate_cps']} calls/s for {c['load']['window_s']} s, hold "
        f"{c['load']['hold_s']} s, {c['load']['key_share']:.0%} press a key; "
        f"{c['operators']} operators answer after {c['operator_answer_ms']} ms",
        "  figure (p50/p95/p99)               ours              baseline        ratio",
        f"  INVITE->200 ms                     {triple('setup_ms', o):17} "
        f"{triple('setup_ms', b):15} {triple('ratios', {'ratios': _ratio_view(result)})}",
        f"  silent INVITE->ring s              {triple('ring_silent_s', o):17} "
        f"{triple('ring_silent_s', b)}",
        f"  key->ring s                        {triple('key_to_ring_s', o):17} "
        f"{triple('key_to_ring_s', b)}",
        f"  FastAGI command round trip ms      {triple('agi_ms', o)}",
        f"  AMI event->audit row ms            {triple('audit_lag_ms', o)}",
        f"  CPU % asterisk / serve             {_usage(o, 'asterisk', 'cpu_percent')} / "
        f"{_usage(o, 'serve', 'cpu_percent')}   baseline asterisk "
        f"{_usage(b, 'asterisk', 'cpu_percent')}",
        f"  RSS growth MB asterisk / serve     {_usage(o, 'asterisk', 'rss_growth_mb')} / "
        f"{_usage(o, 'serve', 'rss_growth_mb')}",
        f"  failed calls ours / baseline       {o['calls']['failed']} / {b['calls']['failed']}"
        f" (failed open {o['calls']['failed_open']}, never rang an operator: silent "
        f"{o['calls']['unrung_silent']}, key {o['calls']['unrung_key']} of "
        f"{o['calls']['answered']}; peak concurrent {o['calls']['peak_concurrent']})",
    ]  # fmt: skip


def _unpinned_figures(unpinned: dict[str, Any]) -> list[str]:
    o, b = unpinned["phases"]["ours"], unpinned["phases"]["baseline"]

    def three(data: Any, path: str) -> str:
        values = [results.dig(data, f"{path}.{p}") for p in ("p50", "p95", "p99")]
        return "/".join("-" if v is None else f"{v:.3g}" for v in values)

    return [f"INVITE->200 ms ours {three(o, 'setup_ms')}, baseline {three(b, 'setup_ms')}",
            f"FastAGI ms {three(o, 'agi_ms')}",
            f"CPU % asterisk {_usage(o, 'asterisk', 'cpu_percent')}, baseline "
            f"{_usage(b, 'asterisk', 'cpu_percent')}"]  # fmt: skip


def _ratio_view(result: dict[str, Any]) -> dict[str, Any]:
    return {p: result["ratios"].get(f"setup_{p}") for p in ("p50", "p95", "p99")}


def _usage(phase: dict[str, Any], process: str, key: str) -> str:
    value = results.dig(phase, f"usage.{process}.{key}")
    return "-" if value is None else f"{value:g}"


def soak_run(install: AsteriskInstall, work: Path, profile: Profile,
             pinning: Pinning | None) -> dict[str, Any]:  # fmt: skip
    """Our centre under the soak load: RSS growth per 1000 calls, and the audit lag's drift."""
    with bench_on(pinning.load) if pinning is not None else contextlib.nullcontext():
        measured = ours(install, work, profile, pinning)
    lag = json.loads((work / "ours" / "probe.json").read_text())["audit"]["lag_ms"]
    measured.pop("asterisk_version", None)
    return {
        "rss_growth_mb_per_1000_calls": soak.rss_per_1000_calls(
            measured.get("usage", {}), profile.load.calls),
        "audit_lag_drift": soak.lag_drift(lag),
        "phase": measured,
    }  # fmt: skip


def load_part(install: AsteriskInstall, work: Path, profile: Profile,
              pinning: Pinning | None) -> dict[str, Any]:  # fmt: skip
    """Ours then the baseline under the same load; pinned, with the bench on the load's CPU."""
    with bench_on(pinning.load) if pinning is not None else contextlib.nullcontext():
        phases = {"ours": ours(install, work, profile, pinning)}
        version = phases["ours"].pop("asterisk_version")
        phases["baseline"] = baseline(install, work, profile, pinning)
    return {"phases": phases, "ratios": ratios(phases["ours"], phases["baseline"]),
            "asterisk": version}  # fmt: skip


def run_part(part: str, result: dict[str, Any], install: AsteriskInstall, work: Path,
             profile: Profile, postgres_url: str | None,
             pinning: Pinning | None = None) -> None:  # fmt: skip
    if part == "load":
        if pinning is not None:
            # Both are kept; the targets are judged on the pinned run (result["phases"]).
            unpinned = load_part(install, work / "unpinned", profile, None)
            result["unpinned"] = {"phases": unpinned["phases"], "ratios": unpinned["ratios"]}
        measured = load_part(install, work, profile, pinning)
        result["phases"].update(measured["phases"])
        result["ratios"] = measured["ratios"]
        result["conditions"]["asterisk"] = measured["asterisk"]
    elif part == "soak":
        result["soak"] = soak_run(install, work, profile, pinning)
    elif part == "capacity":
        with bench_on(pinning.load) if pinning is not None else contextlib.nullcontext():
            result["capacity"] = capacity_search(install, work, profile, pinning)
            result["capacity_baseline"] = capacity_search(install, work, profile, pinning,
                                                          base=True)
        result["capacity_ratio"] = results.ratio(result["capacity"]["rate_cps"],
                                                 result["capacity_baseline"]["rate_cps"])
    elif part == "edge":
        result["edge"] = edge.run(install, work, profile.edge_calls)
    elif part == "console":
        result["console"] = consoles.run(install, work, own_timings)
    elif part == "incidents":
        result["incidents"] = incidents.run(install, work)
    elif part == "message":
        result["message"] = message.run_part(install, work, profile.name, profile.staff)
    elif part == "aml":
        result["aml"] = aml.run(install, work, own_timings)
    elif part == "recording":
        result["recording"] = recording.run(install, work, profile.staff, profile.load, pinning)
    else:
        result["ingest"] = ingest_runs(work, profile, postgres_url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the ~3 minute profile")
    parser.add_argument("--compare", type=Path, metavar="PREV.json")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="result JSON (default: var/bench/<profile>-<time>.json)")
    parser.add_argument("--postgres", metavar="URL",
                        help="ingest into this PostgreSQL instead of a throw-away cluster")
    parser.add_argument("--direct", action="store_true",
                        help="no SIP edge: the trunk's callers send to Asterisk itself")
    parser.add_argument("--only", choices=("load", "capacity", "edge", "ingest", "console",
                                         "incidents", "message", "aml", "recording"),
                        action="append",
                        help="run only these parts (repeatable; load = ours and baseline; "
                             "console: ring to card with 50 consoles, incidents: incident "
                             "created to webhook delivered, message: 10 calls/s with a "
                             "major-incident message, aml: handset fixes under a flood, "
                             "recording: Asterisk's CPU with and without MixMonitor; "
                             "these five only when asked)")
    parser.add_argument("--answer-ms", type=int, metavar="MS",
                        help="operators answer this long after their phone rings "
                             "(default 1000)")
    parser.add_argument("--keep", action="store_true", help="keep the run's work directory")
    parser.add_argument("--soak", action="store_true",
                        help="only the soak: about 300 calls up at once for 10 minutes "
                             "(RSS growth per 1000 calls, audit lag drift)")
    parser.add_argument("--pin", action="store_true",
                        help="SIPp callers and operators on one CPU, Asterisk and serve on "
                             "the other; the load also runs unpinned, both are reported")
    args = parser.parse_args(argv)
    pinning = split() if args.pin else None
    profile = SOAK if args.soak else QUICK if args.quick else FULL
    if args.direct:
        profile = replace(profile, direct=True)
    if args.answer_ms is not None:
        profile = replace(profile, staff=replace(profile.staff, answer_ms=args.answer_ms))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or CHECKOUT / "var" / "bench" / f"{profile.name}-{stamp}.json"
    work = CHECKOUT / "var" / "bench" / "work" / stamp
    work.mkdir(parents=True, exist_ok=True)
    # The edge's own cost needs the edge: a --direct run leaves it out.
    default_parts = ("load", "capacity", "ingest", *(() if args.direct else ("edge",)))
    parts = {"soak"} if args.soak else set(args.only or default_parts)
    started = time.monotonic()
    result: dict[str, Any] = {
        "schema": results.SCHEMA,
        "started": datetime.now(UTC).isoformat(),
        "conditions": conditions(profile),
        "phases": {},
        "errors": {},
    }
    if pinning is not None:
        result["conditions"]["pinning"] = pinning.as_dict()

    def save() -> None:
        result["duration_s"] = round(time.monotonic() - started, 1)
        # Other work on the machine shows here: figures are only as quiet as the machine was.
        result["conditions"]["load_average_after"] = os.getloadavg()
        result["targets"] = [t.as_dict() for t in results.targets(result)]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")

    with (work / "bench.log").open("a") as log_file:
        logs.configure("info", "json", stream=log_file)
        install = install_for(config_mod.load(None, env={}))
        for part in ("load", "capacity", "edge", "ingest", "console", "soak", "incidents",
                     "message", "aml", "recording"):
            if part not in parts:
                continue
            try:
                run_part(part, result, install, work, profile, args.postgres, pinning)
            except Exception as exc:  # one broken part must not cost the figures of the others
                result["errors"][part] = f"{type(exc).__name__}: {exc}"
                print(f"bench: {part} failed: {result['errors'][part]}", file=sys.stderr)
            save()
    print(summary(result))
    print(f"result: {out} ({result['duration_s']} s)")
    if args.compare:
        print(f"compared with {args.compare}:")
        for change in results.compare(json.loads(args.compare.read_text()), result):
            print(f"  {change.line()}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
