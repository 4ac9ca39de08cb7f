"""`scripts/drill`: fault drills, each printing PASS or FAIL with its figure.

    python -m tests.harness.perf.drill [NAME ...] [--quick] [--direct] [--out FILE]

Every drill builds its own sandbox centre (Asterisk behind the SIP edge, Kamailio, as by
default, or without it with --direct; the real `telephony serve`, SIPp operators), runs
calls through one fault, and judges the outcome. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from telephony import config as config_mod
from telephony import logs
from telephony.pbx.sandbox import install_for
from tests.harness import CHECKOUT
from tests.harness.perf import drills, hostile
from tests.harness.perf.verdict import Context, Verdict

DRILLS: dict[str, Callable[[Context], Verdict]] = {
    "agi-down": partial(drills.fail_open, name="agi-down"),
    "agi-stalled": partial(drills.fail_open, name="agi-stalled"),
    "agi-killed": partial(drills.fail_open, name="agi-killed"),
    "ami-cut": drills.ami_cut,
    "serve-kill": drills.serve_kill,
    "db-stop": drills.db_stop,
    "db-lock": drills.db_lock,
    "restart": drills.restart,
    "flood": hostile.flood,
    "malformed": hostile.malformed,
}


def run_one(name: str, ctx: Context) -> Verdict:
    started = time.monotonic()
    try:
        verdict = DRILLS[name](ctx)
    except Exception as exc:  # a broken harness is a failed drill, and the others still run
        verdict = Verdict(name, False, f"could not be carried out: {type(exc).__name__}: {exc}")
    verdict.detail["seconds"] = round(time.monotonic() - started, 1)
    return verdict


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/drill", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"drills to run (default: all): {', '.join(DRILLS)}")
    parser.add_argument("--quick", action="store_true", help="fewer calls, shorter outages")
    parser.add_argument("--calls", type=int, metavar="N", help="calls per drill (default: "
                        "by drill, fewer with --quick)")
    parser.add_argument("--direct", action="store_true",
                        help="no SIP edge: the trunk's callers send to Asterisk itself")
    parser.add_argument("--out", type=Path, metavar="FILE", help="verdicts as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in DRILLS]
    if unknown:
        parser.error(f"unknown drill(s): {', '.join(unknown)}; known: {', '.join(DRILLS)}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = CHECKOUT / "var" / "drill" / stamp
    work.mkdir(parents=True, exist_ok=True)
    verdicts = []
    with (work / "drill.log").open("a") as log_file:
        logs.configure("info", "json", stream=log_file)
        ctx = Context(install_for(config_mod.load(None, env={})), work, args.quick, args.calls,
                      args.direct)
        for name in args.names or list(DRILLS):
            verdict = run_one(name, ctx)
            verdicts.append(verdict)
            print(f"{verdict.line()} [{verdict.detail['seconds']} s]", flush=True)
    passed = sum(v.passed for v in verdicts)
    print(f"{passed}/{len(verdicts)} drills passed")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(
            {"quick": args.quick, "direct": args.direct, "started": stamp,
             "drills": [{"name": v.name, "passed": v.passed, "figure": v.figure,
                         "detail": v.detail} for v in verdicts]}, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if passed == len(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
