"""`telephony operators ...` and `telephony callbacks ...`.

Presence changes go to the database first (the truth), then to Asterisk over AMI. When
Asterisk cannot be reached the change is kept, the command says so and exits 4, and
`telephony serve` applies it when its AMI session comes back.
"""

from __future__ import annotations

import argparse
import getpass
import json
import shlex
import sys
from typing import Any

from sqlalchemy import Engine

from telephony.ami import AMIError
from telephony.callbacks import items as callbacks
from telephony.callbacks.dial import originate_callback
from telephony.config import Config, resolve_path
from telephony.control import ControlError, ami_session
from telephony.edge.render import layout_for, write_subscribers
from telephony.errors import ExitCode
from telephony.location.region import Regions, load_regions
from telephony.operators import presence
from telephony.operators.presence import InsecurePhone, State
from telephony.operators.roster import (
    Operator,
    RosterError,
    add_operator,
    load_roster,
    memberships,
    remove_operator,
)
from telephony.pbx import sandbox
from telephony.pbx.render import queues, write_sandbox
from telephony.store import open_database


def _regions(config: Config) -> Regions:
    return load_regions(resolve_path(config.location.regions_file))


def _roster(config: Config) -> tuple[Operator, ...]:
    return load_roster(resolve_path(config.operators.file), _regions(config))


def _operator(config: Config, op_id: str) -> Operator:
    for op in _roster(config):
        if op.id == op_id:
            return op
    raise RosterError(f"{config.operators.file}: no operator {op_id!r}")


def apply_command(args: argparse.Namespace) -> str:
    """The `deploy apply` that puts a roster change on a production Asterisk, with the
    global options this command was given (the environment carries over by itself)."""
    argv = ["telephony"]
    if args.config:
        argv += ["--config", str(args.config)]
    for item in args.overrides:
        argv += ["--set", item]
    return shlex.join([*argv, "deploy", "apply", "--asterisk-cli", "asterisk -rx"])


def _reload_pjsip(config: Config, args: argparse.Namespace) -> None:
    """In the sandbox: re-render it and reload PJSIP only (registrations and calls carry
    on). Elsewhere the roster reaches Asterisk through `deploy apply`: say exactly that.
    Phones registering at the edge: its credentials table, which Kamailio reads again."""
    if config.edge.phones_via_edge:
        write_subscribers(config, layout_for(config))
        print("edge: phones' credentials rewritten (Kamailio reads them at the next REGISTER)")
    asterisk = sandbox.attach(config)
    if asterisk.pid() is None:
        print("the sandbox Asterisk is not running (`telephony asterisk up` renders the change);"
              f"\non a production Asterisk, apply it now: {apply_command(args)}")
        return
    write_sandbox(config, asterisk.install, asterisk.layout)
    asterisk.cli("module reload res_pjsip.so")
    print("sandbox: PJSIP reloaded")


def _add(config: Config, args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.id}: ")
    if len(password) < 8:
        print("telephony: the password needs at least 8 characters", file=sys.stderr)
        return 2
    op = add_operator(resolve_path(config.operators.file), _regions(config), args.id,
                      args.regency, password, args.name)
    print(f"added {op.id} ({op.name}), home regency {op.regency}")
    _reload_pjsip(config, args)
    return 0


def _remove(config: Config, args: argparse.Namespace) -> int:
    engine = open_database(config)
    try:
        presence.set_state(engine, args.id, State.LOGGED_OUT)
        status = _apply(config, engine)
    finally:
        engine.dispose()
    remove_operator(resolve_path(config.operators.file), args.id)
    print(f"removed {args.id}")
    _reload_pjsip(config, args)
    return status


def _apply(config: Config, engine: Engine) -> int:
    regions = _regions(config)
    roster = load_roster(resolve_path(config.operators.file), regions)
    try:
        with ami_session(config) as ami:
            presence.restore(ami, roster, presence.states(engine), regions, queues(config))
    except (ControlError, AMIError) as exc:
        print(f"telephony: saved, but not applied to Asterisk yet: {exc}", file=sys.stderr)
        return ExitCode.NOT_APPLIED
    return 0


def _phone_tls_port(config: Config) -> int:
    edge = config.edge
    return edge.phone_tls_port if edge.phones_via_edge else config.asterisk.tls_port


def _require_tls_phone(config: Config, op: Operator) -> None:
    """With operators.require_tls Asterisk never rings a phone that is not on TLS: an
    operator without one must not look available while callers wait."""
    with ami_session(config) as ami:
        if presence.tls_contacts(ami, op, config.edge.phones_via_edge):
            return
    raise InsecurePhone(
        f"{op.id} has no phone registered over TLS, and operators.require_tls is on: "
        f"register the softphone with transport TLS (port {_phone_tls_port(config)}) "
        "and SRTP, then log in again"
    )


def _presence(state: State) -> Any:
    def handler(config: Config, args: argparse.Namespace) -> int:
        op = _operator(config, args.id)
        if state is State.AVAILABLE and config.operators.require_tls:
            _require_tls_phone(config, op)
        reason = getattr(args, "reason", None) if state is State.PAUSED else None
        engine = open_database(config)
        try:
            presence.set_state(engine, op.id, state, reason)
            status = _apply(config, engine)
        finally:
            engine.dispose()
        print(f"{op.id}: {state.value}{f' ({reason})' if reason else ''}")
        return status

    return handler


def _live_members(config: Config) -> dict[str, list[presence.Member]] | None:
    try:
        with ami_session(config) as ami:
            events = ami.send_list_action("QueueStatus", timeout=10).events
    except (ControlError, AMIError):
        return None
    found: dict[str, list[presence.Member]] = {}
    for member in presence.members_from(events):
        found.setdefault(member.interface, []).append(member)
    return found


def _list(config: Config, args: argparse.Namespace) -> int:
    regions = _regions(config)
    engine = open_database(config)
    try:
        states = presence.states(engine)
    finally:
        engine.dispose()
    live = _live_members(config)
    rows = []
    for op in load_roster(resolve_path(config.operators.file), regions):
        row = states.get(op.id)
        members = None if live is None else live.get(op.interface, [])
        rows.append({
            "id": op.id, "name": op.name, "regency": op.regency,
            "languages": list(op.languages),
            "state": row.state if row else State.LOGGED_OUT.value,
            "pause_reason": row.pause_reason if row else None,
            "queues": list(memberships(op, regions)),
            "asterisk_queues": None if members is None else sorted(m.queue for m in members),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if live is None:
        print("(Asterisk not reachable: showing the database only)")
    for r in rows:
        joined = r["asterisk_queues"]
        live_text = "" if joined is None else f", in {len(joined)} queues"
        reason = f" ({r['pause_reason']})" if r["pause_reason"] else ""
        print(f"{r['id']:<12} {r['regency']}  {r['state']}{reason}{live_text}  {r['name']}")
    return 0


def _callbacks_list(config: Config, args: argparse.Namespace) -> int:
    engine = open_database(config)
    try:
        callbacks.sweep(engine, config.callbacks.merge_window_s, config.callbacks.min_ivr_s)
        rows = callbacks.items(engine, include_done=args.all)
    finally:
        engine.dispose()
    data = [{
        "id": r.id, "caller": r.caller, "status": r.status, "attempts": r.attempts,
        "emergency_type": r.emergency_type, "regency_code": r.regency_code,
        "location": None if r.location_lat is None else
        {"lat": r.location_lat, "lon": r.location_lon, "radius_m": r.location_radius_m,
         "source": r.location_source},
        "cell_id": r.cell_id, "waited_s": round(r.waited_s, 1),
        "created_at": r.created_at.isoformat(), "last_linkedid": r.last_linkedid,
        "taken_by": r.taken_by,
    } for r in rows]
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    if not data:
        print("no callbacks waiting")
    for d in data:
        print(f"#{d['id']:<4} {d['caller']:<16} {d['status']:<6} x{d['attempts']} "
              f"{d['emergency_type'] or '-':<9} {d['regency_code'] or '-':<6} "
              f"waited {d['waited_s']}s  {d['created_at']}")
    return 0



def _callbacks_take(config: Config, args: argparse.Namespace) -> int:
    if not config.callbacks.trunk_contact:
        print("telephony: callbacks.trunk_contact is empty: there is no route to call citizens",
              file=sys.stderr)
        return 2
    op = _operator(config, args.operator)
    engine = open_database(config)
    try:
        item = callbacks.mark(engine, args.id, callbacks.Status.TAKEN, op.id)
        with ami_session(config) as ami:
            originate_callback(ami, item, op)
    finally:
        engine.dispose()
    print(f"callback #{item.id}: ringing {op.id}, then {item.caller}")
    return 0


def _callbacks_done(config: Config, args: argparse.Namespace) -> int:
    engine = open_database(config)
    try:
        item = callbacks.mark(engine, args.id, callbacks.Status.DONE)
    finally:
        engine.dispose()
    print(f"callback #{item.id} done")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ops = sub.add_parser("operators", help="the roster and operators' presence in the queues")
    actions = ops.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an operator (stores only the HA1 digest)")
    add.add_argument("id")
    add.add_argument("--regency", required=True, help="home regency, e.g. 35.07")
    add.add_argument("--name")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input")
    add.set_defaults(handler=_add)
    remove = actions.add_parser("remove", help="log out and delete an operator")
    remove.add_argument("id")
    remove.set_defaults(handler=_remove)
    for name, state, text in (("login", State.AVAILABLE, "join the operator's queues"),
                              ("logout", State.LOGGED_OUT, "leave all queues"),
                              ("pause", State.PAUSED, "stay in the queues but take no calls"),
                              ("unpause", State.AVAILABLE, "take calls again")):
        parser = actions.add_parser(name, help=text)
        parser.add_argument("id")
        if state is State.PAUSED:
            parser.add_argument("--reason", default="break", choices=presence.PAUSE_REASONS)
        parser.set_defaults(handler=_presence(state))
    listing = actions.add_parser("list", help="the roster with presence and live membership")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)

    cbs = sub.add_parser("callbacks", help="abandoned callers to call back")
    cb_actions = cbs.add_subparsers(dest="action", required=True, metavar="ACTION")
    cb_list = cb_actions.add_parser("list", help="callback items not yet done")
    cb_list.add_argument("--all", action="store_true", help="include done items")
    cb_list.add_argument("--json", action="store_true")
    cb_list.set_defaults(handler=_callbacks_list)
    take = cb_actions.add_parser("take", help="ring the operator, then the caller")
    take.add_argument("id", type=int)
    take.add_argument("--operator", required=True)
    take.set_defaults(handler=_callbacks_take)
    done = cb_actions.add_parser("done", help="close a callback item")
    done.add_argument("id", type=int)
    done.set_defaults(handler=_callbacks_done)
