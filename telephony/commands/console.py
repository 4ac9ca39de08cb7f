"""`telephony console` (serve the web console) and `telephony console users ...`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from telephony.config import Config, resolve_path
from telephony.console import accounts
from telephony.console.accounts import AccountError, Role
from telephony.incidents import load_agencies, tie_agency_user
from telephony.location import load_regions
from telephony.operators.roster import load_roster
from telephony.store import open_database


def _serve(config: Config, args: argparse.Namespace) -> int:
    from telephony.console.server import run

    return run(config)


def _add(config: Config, args: argparse.Namespace) -> int:
    role = Role(args.role)
    if role is Role.OPERATOR and not args.operator:
        raise AccountError("an operator account needs --operator ID (a roster entry)")
    if role is not Role.OPERATOR and args.operator:
        raise AccountError(f"a {role.value} is not an operator: leave out --operator")
    if (role is Role.AGENCY) != bool(args.agency):
        raise AccountError("--agency ID goes with --role agency, and only with it")
    regions = load_regions(resolve_path(config.location.regions_file))
    known = set(load_agencies(resolve_path(config.incidents.agencies_file), regions,
                              config.incidents.allow_plain_http)) if args.agency else set()
    if args.agency and args.agency not in known:
        raise AccountError(f"{config.incidents.agencies_file}: no agency {args.agency!r}")
    if role is Role.OPERATOR:
        roster = load_roster(resolve_path(config.operators.file),
                             load_regions(resolve_path(config.location.regions_file)))
        if not any(op.id == args.operator for op in roster):
            raise AccountError(f"{config.operators.file}: no operator {args.operator!r}")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"web password for {args.name}: ")
    engine = open_database(config)
    try:
        user = accounts.add_user(engine, args.name, role, args.operator, password)
        if args.agency:
            tie_agency_user(engine, user.name, args.agency, known)
    finally:
        engine.dispose()
    tied = f", operator {user.operator_id}" if user.operator_id else ""
    tied += f", agency {args.agency}" if args.agency else ""
    print(f"added console user {user.name} ({user.role.value}{tied})")
    return 0


def _list(config: Config, args: argparse.Namespace) -> int:
    engine = open_database(config)
    try:
        found = accounts.users(engine)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([{"name": u.name, "role": u.role.value, "operator": u.operator_id}
                          for u in found], indent=2))
        return 0
    if not found:
        print("no console users")
    for user in found:
        print(f"{user.name:<20} {user.role.value:<10} {user.operator_id or '-'}")
    return 0


DEMO_SUPERVISOR = "supervisor"


def _demo(config: Config, args: argparse.Namespace) -> int:
    """Web logins for the roster's demo operators (and one supervisor), for scripts/run."""
    roster = load_roster(resolve_path(config.operators.file),
                         load_regions(resolve_path(config.location.regions_file)))
    demo = [op for op in roster if op.demo_password]
    if not demo:
        raise AccountError(f"{config.operators.file} has no demo operators (password = ...)")
    wanted: list[tuple[str, Role, str | None, str]] = [
        (op.id, Role.OPERATOR, op.id, f"web-{op.demo_password}") for op in demo]
    wanted.append((DEMO_SUPERVISOR, Role.SUPERVISOR, None, "web-demo-supervisor"))
    engine = open_database(config)
    try:
        existing = {user.name for user in accounts.users(engine)}
        for name, role, operator_id, password in wanted:
            if name not in existing:
                accounts.add_user(engine, name, role, operator_id, password)
    finally:
        engine.dispose()
    print("  Demo console logins (user / password):")
    for name, role, _operator, password in wanted:
        print(f"    {name} / {password}   {role.value}")
    return 0


def _remove(config: Config, args: argparse.Namespace) -> int:
    engine = open_database(config)
    try:
        accounts.remove_user(engine, args.name)
    finally:
        engine.dispose()
    print(f"removed console user {args.name}")
    return 0



def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    console = sub.add_parser("console", help="the operators' web console (ring cards, map)")
    console.set_defaults(handler=_serve)
    actions = console.add_subparsers(dest="action", metavar="ACTION")
    users = actions.add_parser("users", help="web accounts of the console")
    user_actions = users.add_subparsers(dest="user_action", required=True, metavar="ACTION")
    add = user_actions.add_parser("add", help="add a web user (argon2id password hash)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--operator", metavar="ID", help="the roster operator (role operator)")
    add.add_argument("--agency", metavar="ID", help="the agency (role agency; agencies.toml)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input")
    add.set_defaults(handler=_add)
    listing = user_actions.add_parser("list", help="the console's web users")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)
    demo = user_actions.add_parser("demo", help="web logins for the demo operators (sandbox)")
    demo.set_defaults(handler=_demo)
    remove = user_actions.add_parser("remove", help="delete a web user")
    remove.add_argument("name")
    remove.set_defaults(handler=_remove)
