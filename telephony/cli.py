"""The `telephony` command: global options, then one subcommand per job.

Each command module exposes `register(subparsers)`; a command's handler takes the
effective Config and the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import structlog

from telephony import __version__, logs
from telephony import config as config_mod
from telephony.commands import aml as aml_commands
from telephony.commands import audit as audit_commands
from telephony.commands import console as console_commands
from telephony.commands import deploy as deploy_commands
from telephony.commands import edge as edge_commands
from telephony.commands import incidents as incident_commands
from telephony.commands import location as location_commands
from telephony.commands import message as message_commands
from telephony.commands import operators as operator_commands
from telephony.commands import report as report_commands
from telephony.commands import test_call as test_call_commands
from telephony.config import resolve_path
from telephony.edge.phones import registrar_uris
from telephony.errors import ExitCode, TelephonyError
from telephony.location import load_regions
from telephony.operators.roster import load_roster
from telephony.pbx import sandbox

log = structlog.get_logger(__name__)


def _serve(config: config_mod.Config, args: argparse.Namespace) -> int:
    from telephony.service import Service

    return Service(config).run()


def _asterisk_provision(config: config_mod.Config, args: argparse.Namespace) -> int:
    install = sandbox.install_for(config, rebuild=args.rebuild)
    print(f"{install.version} ({install.origin})")
    return 0


def _asterisk_up(config: config_mod.Config, args: argparse.Namespace) -> int:
    asterisk = sandbox.up(config)
    a = config.asterisk
    udp = f"sip:{a.sip_bind}:{a.sip_port} (UDP)"
    tls = f"sip:{a.sip_bind}:{a.tls_port};transport=tls (TLS, SRTP)"
    phones = tls if config.operators.require_tls else f"{udp} or {tls}" if a.tls_port else udp
    if config.edge.phones_via_edge:
        phones = registrar_uris(config)
    ami = f"{a.ami_bind}:{a.ami_tls_port} (TLS)" if a.ami_tls_port else f"{a.ami_bind}:{a.ami_port}"
    # Behind the edge the network points its trunk at Kamailio, which scripts/run starts.
    edge = config.edge
    trunk = f"{edge.bind}:{edge.port}" if edge.enabled else f"{a.sip_bind}:{a.sip_port}"
    via = " (the SIP edge, Kamailio)" if edge.enabled else ""
    print(
        f"Asterisk is running (pid {asterisk.pid()}, runtime dir {asterisk.layout.root}).\n"
        f"  Mobile network trunk: INVITE sip:112@{trunk}{via} from {a.trunk_address}\n"
        f"    e.g. sipp -sn uac -i {a.trunk_address} -p 5070 {trunk} -s 112 -m 1\n"
        f"  Operators' softphones: register to {phones} from 127.0.0.1\n"
        f"  FastAGI {config.agi.bind}:{config.agi.port}, AMI {ami}"
    )
    regions = load_regions(resolve_path(config.location.regions_file))
    demo = [op for op in load_roster(resolve_path(config.operators.file), regions)
            if op.demo_password]
    if demo:
        print("  Demo operators (user / password, realm 112); then "
              "`telephony operators login USER`:")
        for op in demo:
            print(f"    {op.id} / {op.demo_password}   {op.name}")
    return 0


def _asterisk_down(config: config_mod.Config, args: argparse.Namespace) -> int:
    sandbox.attach(config).stop()
    return 0


def _asterisk_status(config: config_mod.Config, args: argparse.Namespace) -> int:
    state = sandbox.status(config)
    if args.json:
        print(json.dumps(asdict(state)))
    else:
        running = f"running (pid {state.pid}, {state.channels} channels)"
        print(f"{running if state.running else 'stopped'}: {state.runtime_dir}")
    return ExitCode.OK if state.running else ExitCode.NOT_RUNNING


def _asterisk_cli(config: config_mod.Config, args: argparse.Namespace) -> int:
    print(sandbox.attach(config).cli(args.command), end="")
    return 0


def _register_asterisk(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("asterisk", help="provision and run the sandbox Asterisk")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    provision = actions.add_parser(
        "provision", help="find Asterisk 20.12/21.7/22.2+, or build the cached Debian sid tree"
    )
    provision.add_argument("--rebuild", action="store_true", help="rebuild the cached tree")
    provision.set_defaults(handler=_asterisk_provision)
    actions.add_parser("up", help="render the config and start Asterisk").set_defaults(
        handler=_asterisk_up
    )
    actions.add_parser("down", help="stop Asterisk gracefully").set_defaults(handler=_asterisk_down)
    status = actions.add_parser("status", help="is the sandbox Asterisk running")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_asterisk_status)
    cli = actions.add_parser("cli", help="run one Asterisk CLI command")
    cli.add_argument("command")
    cli.set_defaults(handler=_asterisk_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="telephony",
        description="Call handling for Indonesia's emergency number 112, behind Asterisk.",
    )
    parser.add_argument("--version", action="version", version=f"telephony {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML config file (default: $TELEPHONY_CONFIG, else config/telephony.toml)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        dest="overrides",
        help="override one config value; wins over the file and the environment",
    )
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--log-format", choices=("auto", "json", "console"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("serve", help="run the FastAGI server and AMI client").set_defaults(
        handler=_serve
    )
    _register_asterisk(sub)
    deploy_commands.register(sub)
    location_commands.register(sub)
    audit_commands.register(sub)
    operator_commands.register(sub)
    edge_commands.register(sub)
    test_call_commands.register(sub)
    console_commands.register(sub)
    incident_commands.register(sub)
    message_commands.register(sub)
    report_commands.register(sub)
    aml_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = list(args.overrides)
    if args.log_level:
        overrides.append(f"service.log_level={args.log_level}")
    if args.log_format:
        overrides.append(f"service.log_format={args.log_format}")
    try:
        config = config_mod.load(args.config, overrides=overrides)
        # The service's log is its output (and the console's, when it serves); every other
        # command reports on stdout and logs aside.
        serving = args.command == "serve" or (args.command == "console" and not args.action)
        stream = sys.stdout if serving else sys.stderr
        logs.configure(config.service.log_level, config.service.log_format, stream)
        status: int = args.handler(config, args)
    except TelephonyError as exc:
        # The one place errors are reported: one line, the exit code the error carries.
        what = "config error: " if isinstance(exc, config_mod.ConfigError) else ""
        print(f"telephony: {what}{exc}", file=sys.stderr)
        return exc.exit_code
    return status


if __name__ == "__main__":
    sys.exit(main())
