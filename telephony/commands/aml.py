"""`telephony aml senders add|list|remove` and `telephony aml list [--unmatched] [--json]`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime

from telephony.aml import store
from telephony.aml.senders import SenderError, add_sender, load_senders, remove_sender
from telephony.config import Config, resolve_path
from telephony.store import open_database


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def fix_lines(fixes: list[store.Stored]) -> list[str]:
    """One line per fix, as `aml list` and `calls show` print them."""
    lines = []
    for f in fixes:
        where = (f"{f.lat:.5f},{f.lon:.5f} ±{f.accuracy_m:.0f} m {f.method}"
                 if f.lat is not None and f.lon is not None and f.accuracy_m is not None
                 else f"rejected: {f.rejected} {f.detail}".rstrip())
        routed = f" routed to {f.routed_to}" if f.routed_to else ""
        lines.append(f"#{f.id} {_when(f.received_at)} {f.transport} from {f.sender} "
                     f"{f.number or '(no number)'} {where} fix {_when(f.fixed_at)} "
                     f"call {f.linkedid or 'unmatched'}{routed}")
    return lines


def _add(config: Config, args: argparse.Namespace) -> int:
    secret = ""
    if args.secret_stdin:
        secret = sys.stdin.readline().rstrip("\n")
    elif not args.certificate_name:
        secret = getpass.getpass(f"shared secret for {args.name}: ")
    sender = add_sender(resolve_path(config.aml.senders_file), args.name, args.network, secret,
                        args.certificate_name or "")
    how = " and ".join(x for x in ("secret" if sender.secret_hash else "",
                                   f"certificate {sender.certificate_name}"
                                   if sender.certificate_name else "") if x)
    print(f"added AML sender {sender.name} from {', '.join(sender.networks)} ({how})")
    return 0


def _senders(config: Config, args: argparse.Namespace) -> int:
    senders = load_senders(resolve_path(config.aml.senders_file))
    if args.json:
        print(json.dumps([{"name": s.name, "networks": list(s.networks),
                           "secret": bool(s.secret_hash),
                           "certificate_name": s.certificate_name} for s in senders], indent=2))
        return 0
    if not senders:
        print("no AML senders")
    for s in senders:
        auth = ", ".join(x for x in ("secret" if s.secret_hash else "",
                                     f"certificate {s.certificate_name}"
                                     if s.certificate_name else "") if x)
        print(f"{s.name}\t{' '.join(s.networks)}\t{auth}")
    return 0


def _remove(config: Config, args: argparse.Namespace) -> int:
    remove_sender(resolve_path(config.aml.senders_file), args.name)
    print(f"removed AML sender {args.name}")
    return 0


def _list(config: Config, args: argparse.Namespace) -> int:
    engine = open_database(config)
    try:
        found = store.fixes(engine, unmatched=args.unmatched, limit=args.limit)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([asdict(f) for f in found]))
        return 0
    print("\n".join(fix_lines(found)) if found else "no fixes")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    aml = sub.add_parser("aml", help="handset location (AML/ELS): senders and fixes")
    actions = aml.add_subparsers(dest="action", required=True, metavar="ACTION")
    senders = actions.add_parser("senders", help="who may send fixes (config/aml.toml)")
    sender_actions = senders.add_subparsers(dest="sender_action", required=True,
                                            metavar="ACTION")
    add = sender_actions.add_parser("add", help="add or replace a sender")
    add.add_argument("name")
    add.add_argument("--network", action="append", required=True, metavar="CIDR",
                     help="a network it sends from (repeatable)")
    add.add_argument("--secret-stdin", action="store_true",
                     help="read its HTTP Basic shared secret from standard input")
    add.add_argument("--certificate-name", metavar="CN",
                     help="the common name of its client certificate")
    add.set_defaults(handler=_add)
    listing = sender_actions.add_parser("list", help="the configured senders")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_senders)
    remove = sender_actions.add_parser("remove", help="remove a sender")
    remove.add_argument("name")
    remove.set_defaults(handler=_remove)
    fixes = actions.add_parser("list", help="received fixes, newest first")
    fixes.add_argument("--unmatched", action="store_true", help="only those no call claimed")
    fixes.add_argument("--json", action="store_true")
    fixes.add_argument("--limit", type=int, default=200)
    fixes.set_defaults(handler=_list)


__all__ = ["SenderError", "fix_lines", "register"]
