"""`telephony incidents ...` and `telephony agencies list`: the console's incident actions for
engineers' scripts and integrations, through the same code (telephony.incidents) and audited
the same way (a ConsoleAction UserEvent through Asterisk), as the user ``cli``.

A dispatch queues its webhook in the durable outbox; the console's worker delivers it (at
once if the console runs, else when it starts).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from telephony.config import Config, resolve_path
from telephony.console.actions import Actions
from telephony.console.incident_api import detail, summary
from telephony.control import ami_session
from telephony.incidents import (
    TYPES,
    IncidentError,
    IncidentRecord,
    Incidents,
    call_facts,
    eido,
    load_agencies,
    open_desk,
    webhook_body,
)
from telephony.location import load_regions
from telephony.store import open_database

CLI_USER = "cli"


def _refuse(user: str, action: str, linkedid: str = "", **fields: str) -> None:
    raise IncidentError(1, "reading commands do not change incidents")


@contextmanager
def _desk(config: Config, changing: bool) -> Iterator[tuple[Incidents, Engine]]:
    engine = open_database(config)
    regions = load_regions(resolve_path(config.location.regions_file))
    try:
        if not changing:
            yield open_desk(config, engine, regions, _refuse), engine
            return
        with ami_session(config) as ami:
            actions = Actions(config, engine, ami, regions, {})
            yield open_desk(config, engine, regions, actions.audit), engine
    finally:
        engine.dispose()


def _show(desk: Incidents, record: IncidentRecord, as_json: bool) -> int:
    if as_json:
        print(detail(desk, record).model_dump_json(indent=2))
        return 0
    where = f"{record.point[0]:.5f},{record.point[1]:.5f}" if record.point else "-"
    print(f"incident {record.id}  {record.type} {record.subtype}  priority {record.priority}  "
          f"{record.status}")
    print(f"  regency {record.regency_code}  shared with {', '.join(record.shared_with) or '-'}"
          f"  at {where}  number {record.number or '-'}")
    print(f"  calls: {', '.join(record.calls)}")
    for handoff in record.handoffs:
        print(f"  agency {handoff.agency_id}: {handoff.status} (dispatched "
              f"{handoff.dispatched_at:%H:%M:%S}, delivered "
              f"{f'{handoff.delivered_at:%H:%M:%S}' if handoff.delivered_at else '-'})")
    for entry in record.timeline:
        text = entry.detail.get("text") or entry.detail.get("note") or ""
        print(f"  {entry.at:%Y-%m-%d %H:%M:%S} {entry.kind:<12} {entry.user:<16} "
              f"{entry.agency_id or entry.regency_code} {json.dumps(text, ensure_ascii=False)}")
    return 0


def _create(config: Config, args: argparse.Namespace) -> int:
    with _desk(config, True) as (desk, engine):
        facts = call_facts(engine, args.call)
        if facts is None:
            raise IncidentError(404, f"no call {args.call} in the audit store")
        return _show(desk, desk.create(CLI_USER, facts, incident_type=args.type,
                                       note=args.note), args.json)


def _change(config: Config, args: argparse.Namespace) -> int:
    with _desk(config, True) as (desk, _engine):
        if args.action == "link":
            record = desk.link(CLI_USER, args.id, args.call)
        elif args.action == "dispatch":
            record = desk.dispatch(CLI_USER, args.id, args.agency,
                                   webhook_body(config.incidents.system_id))
        elif args.action == "share":
            record = desk.share(CLI_USER, args.id, args.regency)
        else:
            record = desk.close(CLI_USER, args.id)
        return _show(desk, record, args.json)


def _list(config: Config, args: argparse.Namespace) -> int:
    with _desk(config, False) as (desk, _engine):
        found = desk.listing(open_only=not args.all)
        if args.json:
            print(json.dumps([summary(r).model_dump() for r in found], indent=2,
                             ensure_ascii=False))
            return 0
        if not found:
            print("no open incidents" if not args.all else "no incidents")
        for r in found:
            print(f"{r.id:>6}  {r.status:<12} {r.type:<9} p{r.priority}  {r.regency_code}"
                  f"{'+' + ','.join(r.shared_with) if r.shared_with else '':<18} "
                  f"calls {len(r.calls):<3} agencies {','.join(h.agency_id for h in r.handoffs)}")
        return 0


def _show_one(config: Config, args: argparse.Namespace) -> int:
    with _desk(config, False) as (desk, _engine):
        record = desk.get(args.id)
        if args.eido:
            print(json.dumps(eido(record, config.incidents.system_id), indent=2,
                             ensure_ascii=False))
            return 0
        return _show(desk, record, args.json)


def _agencies(config: Config, args: argparse.Namespace) -> int:
    regions = load_regions(resolve_path(config.location.regions_file))
    found = load_agencies(resolve_path(config.incidents.agencies_file), regions,
                          config.incidents.allow_plain_http)
    if args.json:
        print(json.dumps([{"id": a.id, "name": a.name, "kind": a.kind, "number": a.number,
                           "regency": a.regency_code, "ack_timeout_s": a.ack_timeout_s,
                           "webhook": bool(a.webhook_url)} for a in found.values()], indent=2))
        return 0
    if not found:
        print(f"no agencies in {config.incidents.agencies_file}")
    for a in found.values():
        print(f"{a.id:<24} {a.regency_code}  {a.kind:<9} {a.number or '-':<4} "
              f"ack {a.ack_timeout_s:>5.0f} s  {'webhook' if a.webhook_url else 'console'}  "
              f"{a.name}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    incidents = sub.add_parser("incidents", help="incidents: create, link, dispatch, share")
    actions = incidents.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="an incident from a call (audited as cli)")
    create.add_argument("--call", required=True, metavar="LINKEDID")
    create.add_argument("--type", choices=TYPES)
    create.add_argument("--note", default="", metavar="TEXT")
    create.set_defaults(handler=_create)
    for name, flag, metavar, what in (
            ("link", "--call", "LINKEDID", "link another call to the incident"),
            ("dispatch", "--agency", "NAME", "hand the incident to an agency"),
            ("share", "--regency", "CODE", "share the incident with another regency"),
            ("close", "", "", "close the incident")):
        action = actions.add_parser(name, help=what)
        action.add_argument("id", type=int)
        if flag:
            action.add_argument(flag, required=True, metavar=metavar)
        action.set_defaults(handler=_change)
    listing = actions.add_parser("list", help="open incidents (--all: closed too)")
    listing.add_argument("--all", action="store_true")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="one incident, its calls, hand-offs and timeline")
    show.add_argument("id", type=int)
    show.add_argument("--eido", action="store_true",
                      help="the export: JSON with NENA EIDO names, locations as PIDF-LO")
    show.set_defaults(handler=_show_one)
    for parser in (create, listing, show, *(actions.choices[n] for n in
                                            ("link", "dispatch", "share", "close"))):
        parser.add_argument("--json", action="store_true")
    agencies = sub.add_parser("agencies", help="the agencies incidents are handed to")
    agency_actions = agencies.add_subparsers(dest="action", required=True, metavar="ACTION")
    agency_list = agency_actions.add_parser("list", help="config/agencies.toml, checked")
    agency_list.add_argument("--json", action="store_true")
    agency_list.set_defaults(handler=_agencies)
