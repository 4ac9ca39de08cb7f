"""`telephony edge check|up|down|status`: the Kamailio edge from the command line."""

from __future__ import annotations

import argparse
import json

from telephony.config import Config
from telephony.edge.phones import registrar_uris
from telephony.edge.process import Kamailio
from telephony.edge.render import EdgeError
from telephony.errors import ExitCode


def _check(config: Config, args: argparse.Namespace) -> int:
    if not config.edge.enabled:
        # scripts/run reads this first word to know whether to supervise a Kamailio.
        print("off: edge.enabled is false (direct mode: the trunks send to Asterisk)")
        return 0
    kamailio = Kamailio(config)
    kamailio.check()
    print(f"ok: {kamailio.layout.cfg}")
    return 0


def _run(config: Config, args: argparse.Namespace) -> int:
    Kamailio(config).exec()
    return 0  # not reached: exec() becomes Kamailio


def _up(config: Config, args: argparse.Namespace) -> int:
    kamailio = Kamailio(config)
    kamailio.start()
    edge = config.edge
    print(
        f"Kamailio is running (pid {kamailio.pid()}, runtime dir {kamailio.layout.root}).\n"
        f"  Trunks: INVITE sip:112@{edge.bind}:{edge.port}; it relays to Asterisk at "
        f"{config.asterisk.sip_bind}:{config.asterisk.sip_port} from {edge.inside_address}\n"
        f"  JSON-RPC http://127.0.0.1:{edge.rpc_port}/RPC; log {kamailio.layout.log}"
    )
    if edge.phones_via_edge:
        print(f"  Operators' softphones: register to {registrar_uris(config)}")
    if not edge.enabled:
        print("  Note: edge.enabled is false, so Asterisk still identifies trunks by address "
              "and refuses the edge's calls; set it and re-render Asterisk's config.")
    return 0


def _down(config: Config, args: argparse.Namespace) -> int:
    Kamailio(config).stop()
    return 0


def _status(config: Config, args: argparse.Namespace) -> int:
    kamailio = Kamailio(config)
    pid = kamailio.pid()
    counters: dict[str, int] = {}
    if pid is not None:
        try:
            counters = kamailio.rpc.statistics().counters
        except EdgeError as exc:
            print(f"telephony: {exc}")
    if args.json:
        print(json.dumps({"running": pid is not None, "pid": pid, "counters": counters}))
    else:
        print(f"{f'running (pid {pid})' if pid else 'stopped'}: {kamailio.layout.root}")
        for name, value in counters.items():
            print(f"  {name} {value}")
    return ExitCode.OK if pid is not None else ExitCode.NOT_RUNNING


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("edge", help="the Kamailio SIP edge in front of Asterisk")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("check", help="render and check the Kamailio config").set_defaults(
        handler=_check
    )
    actions.add_parser("up", help="render the config and start Kamailio").set_defaults(
        handler=_up
    )
    actions.add_parser(
        "run", help="render the config and become Kamailio, in the foreground (supervisors)"
    ).set_defaults(handler=_run)
    actions.add_parser("down", help="stop Kamailio").set_defaults(handler=_down)
    status = actions.add_parser("status", help="is Kamailio running, and its counters")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)
