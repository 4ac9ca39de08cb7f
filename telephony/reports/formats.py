"""A report as JSON, CSV or HTML (with inline SVG charts). Columns: docs/reports.md.

The CSV is one table for every section, so a spreadsheet filters it by ``section``; each
section's rows map onto its columns through ``CSV_ROWS`` (incidents add theirs there).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from datetime import date
from html import escape
from typing import Any

from sqlalchemy import Engine

from telephony.charts import Series, bars
from telephony.config import Config
from telephony.reports.figures import build

CSV_COLUMNS = ("section", "regency_code", "from", "to", "item", "outcome", "calls",
               "share_of_offered", "target", "agency", "handoffs", "median_s", "p90_s")
Rows = Callable[[dict[str, Any]], Iterable[dict[str, object]]]


def _calls(data: dict[str, Any]) -> Iterable[dict[str, object]]:
    for r in data["rows"]:
        yield {"item": r["emergency_type"], "outcome": r["outcome"], "calls": r["calls"]}


def _answer_times(data: dict[str, Any]) -> Iterable[dict[str, object]]:
    for r in data["rows"]:
        yield {"item": r["bucket"], "outcome": "answered", "calls": r["calls"],
               "share_of_offered": r["share_of_offered"]}
    for level in data["service_levels"]:
        yield {"item": f"answered within {level['within_s']:g} s", "outcome": "answered",
               "share_of_offered": level["share"], "target": level["target"]}


def _nuisance(data: dict[str, Any]) -> Iterable[dict[str, object]]:
    for r in data["rows"]:
        yield {"item": r["category"], "outcome": "classified", "calls": r["calls"],
               "share_of_offered": r["share_of_offered"]}


def _incidents(data: dict[str, Any]) -> Iterable[dict[str, object]]:
    for r in data["rows"]:
        base = {"agency": r["agency_id"]}
        yield {**base, "item": "hand-offs", "outcome": "dispatched", "handoffs": r["handoffs"]}
        for item, outcome, times in (
                ("hand-off time (created to dispatched)", "dispatched", r["handoff"]),
                ("acknowledgement time (dispatched to acknowledged)", "acknowledged",
                 r["acknowledgement"])):
            yield {**base, "item": item, "outcome": outcome, "handoffs": times["count"],
                   "median_s": _seconds(times["median_s"]), "p90_s": _seconds(times["p90_s"])}
        yield {**base, "item": "not acknowledged", "outcome": "unacknowledged",
               "handoffs": r["unacknowledged"]}
        yield {**base, "item": "escalated (not acknowledged in time)", "outcome": "escalated",
               "handoffs": r["escalated"]}


def _seconds(value: object) -> object:
    return round(value, 1) if isinstance(value, float) else ""


CSV_ROWS: dict[str, Rows] = {"calls": _calls, "answer_times": _answer_times,
                             "nuisance": _nuisance, "incidents": _incidents}


def as_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False)


def as_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    base = {"regency_code": report["regency_code"], "from": report["from"], "to": report["to"]}
    writer.writerow({**base, "section": "offered", "item": "calls offered",
                     "calls": report["offered"]})
    for name, data in report["sections"].items():
        for row in CSV_ROWS[name](data):
            writer.writerow({**base, "section": name, **row})
    return out.getvalue()


def _table(header: tuple[str, ...], rows: Iterable[tuple[object, ...]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(value: object) -> str:
    return f"{100 * float(value):.1f} %" if isinstance(value, int | float) else "-"


def as_html(report: dict[str, Any], regency_name: str) -> str:
    sections = report["sections"]
    calls, times, nuisance = sections["calls"], sections["answer_times"], sections["nuisance"]
    outcomes = sorted({r["outcome"] for r in calls["rows"]})
    types = sorted({r["emergency_type"] for r in calls["rows"]})
    by = {(r["emergency_type"], r["outcome"]): r["calls"] for r in calls["rows"]}
    parts = [
        "<!doctype html><html lang='id'><head><meta charset='utf-8'>",
        f"<title>Laporan 112 / 112 report {escape(report['regency_code'])}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
        "th:first-child,td:first-child{text-align:left}</style></head><body>",
        f"<h1>Laporan 112 / 112 report: {escape(regency_name)} "
        f"({escape(report['regency_code'])})</h1>",
        f"<p>{escape(report['from'])} – {escape(report['to'])} ({escape(report['timezone'])}); "
        f"panggilan masuk / calls offered: {report['offered']}</p>",
        "<h2>Panggilan menurut jenis dan hasil / Calls by type and outcome</h2>",
        bars("Calls by type and outcome", types,
             [Series(o, [by.get((t, o), 0) for t in types]) for o in outcomes]),
        _table(("type", *outcomes), ((t, *(by.get((t, o), 0) for o in outcomes))
                                     for t in types)),
        "<h2>Waktu jawab / Answer times</h2>",
        bars("Answer-time distribution", [r["bucket"] for r in times["rows"]],
             [Series("answered calls", [r["calls"] for r in times["rows"]])]),
        _table(("bucket", "calls", "share of offered"),
               ((r["bucket"], r["calls"], _pct(r["share_of_offered"])) for r in times["rows"])),
        _table(("service level", "share", "NENA target", "met"),
               ((f"within {lv['within_s']:g} s", _pct(lv["share"]), _pct(lv["target"]),
                 "yes" if lv["met"] else "no") for lv in times["service_levels"])),
        "<h2>Panggilan gangguan / Nuisance calls</h2>",
        f"<p>share of offered calls classified prank or ghost: "
        f"{_pct(nuisance['nuisance_share'])}</p>",
        bars("Classifications", [r["category"] for r in nuisance["rows"]],
             [Series("calls", [r["calls"] for r in nuisance["rows"]])]),
        _table(("category", "calls", "share of offered"),
               ((r["category"], r["calls"], _pct(r["share_of_offered"]))
                for r in nuisance["rows"])),
    ]
    agencies = sections["incidents"]["rows"]
    parts += [
        "<h2>Insiden per instansi / Incidents by agency</h2>",
        bars("Acknowledgement time by agency (median, s)", [r["agency_id"] for r in agencies],
             [Series("median s", [r["acknowledgement"]["median_s"] or 0 for r in agencies])]),
        _table(("agency", "hand-offs", "incidents", "hand-off median s", "hand-off p90 s",
                "acknowledged", "ack median s", "ack p90 s", "not acknowledged", "escalated"),
               ((r["agency_id"], r["handoffs"], r["incidents"],
                 _seconds(r["handoff"]["median_s"]), _seconds(r["handoff"]["p90_s"]),
                 r["acknowledgement"]["count"], _seconds(r["acknowledgement"]["median_s"]),
                 _seconds(r["acknowledgement"]["p90_s"]), r["unacknowledged"], r["escalated"])
                for r in agencies)),
    ]
    for name in sections:
        if name not in ("calls", "answer_times", "nuisance", "incidents"):
            # A section registered later (incidents): its rows as a table until it has a view.
            rows = list(CSV_ROWS[name](sections[name]))
            parts += [f"<h2>{escape(name)}</h2>",
                      _table(CSV_COLUMNS[4:], (tuple(r.get(c, "") for c in CSV_COLUMNS[4:])
                                               for r in rows))]
    parts.append("</body></html>")
    return "".join(parts)


MEDIA_TYPES = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
               "json": "application/json"}


def render(engine: Engine, config: Config, regency_code: str, regency_name: str, first: date,
           last: date, fmt: str) -> str:
    """The report as text in ``fmt``: what `telephony report` prints and the console sends."""
    report = build(engine, config, regency_code, first, last)
    if fmt == "json":
        return as_json(report)
    if fmt == "csv":
        return as_csv(report)
    return as_html(report, regency_name)
