"""`telephony report --regency CODE --from DATE --to DATE [--format html|csv|json]`."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from telephony.config import Config, resolve_path
from telephony.errors import ConfigurationError
from telephony.location import load_regions
from telephony.reports.formats import render
from telephony.store import open_database


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _render(config: Config, regency_code: str, first: date, last: date, fmt: str) -> str:
    regions = load_regions(resolve_path(config.location.regions_file))
    regency = regions.regencies.get(regency_code)
    if regency is None:
        raise ConfigurationError(f"{config.location.regions_file}: no regency {regency_code!r}")
    if last < first:
        raise ConfigurationError("--to is before --from")
    engine = open_database(config)
    try:
        return render(engine, config, regency_code, regency.name, first, last, fmt)
    finally:
        engine.dispose()


def _report(config: Config, args: argparse.Namespace) -> int:
    text = _render(config, args.regency, args.date_from, args.date_to, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="a regency's calls, answer times and nuisance "
                                           "shares over days (docs/reports.md)")
    report.add_argument("--regency", required=True, metavar="CODE", help="e.g. 35.78")
    report.add_argument("--from", dest="date_from", type=_day, required=True, metavar="DATE")
    report.add_argument("--to", dest="date_to", type=_day, required=True, metavar="DATE",
                        help="last day included (dates in console.timezone)")
    report.add_argument("--format", choices=("html", "csv", "json"), default="html")
    report.add_argument("--output", metavar="FILE", help="write there instead of stdout")
    report.set_defaults(handler=_report)
