"""`telephony message publish|list|expire`: major-incident messages from the command line.

The same code as the console's API (telephony.messages.store); each change is entered into
the audit chain as a ConsoleAction UserEvent by the user `cli`, when AMI answers (the message
is in force either way: the command says when it could not be audited).
"""

from __future__ import annotations

import argparse
import json
import sys

from telephony.ami import AMIError
from telephony.config import Config
from telephony.console.words import AUDIT_EVENT
from telephony.control import ControlError, ami_session
from telephony.messages import store
from telephony.messages.area import Area, parse_circle, parse_regencies
from telephony.messages.models import MajorMessage
from telephony.store import open_database

USER = "cli"


def _audit(config: Config, operation: str, row: MajorMessage) -> None:
    try:
        with ami_session(config) as ami:
            ami.send_action("UserEvent", UserEvent=AUDIT_EVENT, Operation=operation, User=USER,
                            MessageId=str(row.id), Area=row.area.describe(),
                            Until=str(store.as_dict(row)["expires_at"]))
    except (ControlError, AMIError) as exc:
        print(f"telephony: message {row.id}: {operation} done but not audited: {exc}",
              file=sys.stderr)


def _text(row: MajorMessage) -> str:
    data = store.as_dict(row)
    state = "active" if data["active"] else "ended"
    return (f"{row.id}  {state}  until {data['expires_at']}  {row.seconds:.1f} s  "
            f"{row.area.describe()}  by {row.created_by}\n    id: {row.text_id}"
            + (f"\n    en: {row.text_en}" if row.text_en else ""))


def _publish(config: Config, args: argparse.Namespace) -> int:
    if args.circle:
        lat, lon, radius = parse_circle(args.circle)
        area = Area(lat=lat, lon=lon, radius_m=radius)
    else:
        area = Area(regencies=parse_regencies(args.regencies))
    engine = open_database(config)
    try:
        row = store.publish(engine, config,
                            store.Draft(args.text, args.text_en or "", area, args.minutes), USER)
    finally:
        engine.dispose()
    _audit(config, "message-publish", row)
    print(json.dumps(store.as_dict(row), indent=2, ensure_ascii=False) if args.json
          else _text(row))
    return 0


def _list(config: Config, args: argparse.Namespace) -> int:
    engine = open_database(config)
    try:
        rows = store.listing(engine) if args.all else store.active(engine)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([store.as_dict(r) for r in rows], indent=2, ensure_ascii=False))
    else:
        print("\n".join(_text(r) for r in rows) if rows else "no active messages")
    return 0


def _expire(config: Config, args: argparse.Namespace) -> int:
    engine = open_database(config)
    try:
        row = store.expire(engine, args.id, USER)
    finally:
        engine.dispose()
    _audit(config, "message-expire", row)
    print(json.dumps(store.as_dict(row), indent=2, ensure_ascii=False) if args.json
          else _text(row))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    message = sub.add_parser("message", help="major-incident messages callers hear")
    actions = message.add_subparsers(dest="action", required=True, metavar="ACTION")
    pub = actions.add_parser("publish", help="speak a message to callers from an area")
    pub.add_argument("--text", required=True, help="the Indonesian text")
    pub.add_argument("--text-en", help="an English text, spoken after the Indonesian")
    where = pub.add_mutually_exclusive_group(required=True)
    where.add_argument("--regencies", metavar="CODES", help="e.g. 35.13,35.14,35.07,35.08")
    where.add_argument("--circle", metavar="LAT,LON,RADIUS_M", help="callers within it")
    pub.add_argument("--minutes", type=int, required=True, help="how long it stays active")
    pub.add_argument("--json", action="store_true")
    pub.set_defaults(handler=_publish)
    listing = actions.add_parser("list", help="active messages (--all: every one)")
    listing.add_argument("--all", action="store_true")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)
    end = actions.add_parser("expire", help="end a message now")
    end.add_argument("id", type=int)
    end.add_argument("--json", action="store_true")
    end.set_defaults(handler=_expire)
