"""`telephony deploy`: put our configuration on an Asterisk and prove it runs.

    telephony deploy render --target DIR [--edge-target DIR]
                                write our *_112.conf includes (print #include lines) and,
                                with the edge, kamailio.cfg and its data files
    telephony deploy check [--asterisk-cli CMD] [--target DIR] [--edge-target DIR]
    telephony deploy apply [--asterisk-cli CMD] [--target DIR] [--edge-target DIR]
                           [--restart-edge]

Without --asterisk-cli the target is the sandbox of `telephony asterisk up`; with it, any
command prefix that runs one CLI command, e.g. --asterisk-cli "asterisk -rx". --target
defaults to the configuration directory that Asterisk reports; --edge-target to
edge.config_dir (e.g. /etc/kamailio), or else edge.runtime_dir (the sandbox's edge).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path

from telephony.config import Config
from telephony.edge import deploy as edge_deploy
from telephony.edge.render import layout_for
from telephony.pbx import deploy, sandbox
from telephony.pbx.check import CLI, Problem
from telephony.pbx.layout import ami_secret

DIRECT = "edge: off (edge.enabled = false, direct mode): no Kamailio files rendered"


def _render(config: Config, args: argparse.Namespace) -> int:
    _edge_preflight(config, args)
    result = deploy.render(config, args.target)
    _print_rendered(result)
    _edge_install(config, args)
    print("\nAdd these lines to the main files (once):")
    for main, line in result.include_lines.items():
        print(f"  {main}: {line}")
    return 0


def _edge_preflight(config: Config, args: argparse.Namespace) -> None:
    """Refuse before anything is written, Asterisk's files included."""
    if config.edge.enabled:
        edge_deploy.refuse_foreign(config, layout_for(config, args.edge_target))


def _edge_install(config: Config, args: argparse.Namespace) -> edge_deploy.Installed | None:
    if not config.edge.enabled:
        print(DIRECT)
        return None
    installed = edge_deploy.install(config, layout_for(config, args.edge_target))
    _print_rendered(installed)
    return installed


def _print_rendered(result: deploy.Rendered | edge_deploy.Installed) -> None:
    for path in result.written:
        print(f"wrote     {path}")
    for path in result.unchanged:
        print(f"unchanged {path}")


def _edge_problems(config: Config, args: argparse.Namespace) -> list[Problem]:
    if not config.edge.enabled:
        return []
    return edge_deploy.verify(config, layout_for(config, args.edge_target))


def _target(config: Config, args: argparse.Namespace) -> tuple[CLI, Config, Path]:
    """The Asterisk to talk to, the config to render for it, and its config directory."""
    cli: CLI
    if args.asterisk_cli:
        cli = deploy.CommandCLI(shlex.split(args.asterisk_cli))
    else:
        asterisk = sandbox.attach(config)
        cli = asterisk
        if not config.ami.secret:
            # The sandbox generates its AMI secret; production must set one.
            ami = dataclasses.replace(config.ami, secret=ami_secret(config, asterisk.layout))
            config = dataclasses.replace(config, ami=ami)
    confdir = args.target or deploy.setting(cli, "Configuration directory")
    return cli, config, confdir


def _report(problems: tuple[Problem, ...] | list[Problem], what: str) -> int:
    for problem in problems:
        print(problem)
    print(f"deploy {what}: {len(problems)} problem(s)" if problems else f"deploy {what}: ok")
    return 1 if problems else 0


def _check(config: Config, args: argparse.Namespace) -> int:
    cli, config, confdir = _target(config, args)
    problems = deploy.verify(cli, config, confdir)
    if not config.edge.enabled:
        print(DIRECT)
    return _report([*problems, *_edge_problems(config, args)], "check")


def _apply(config: Config, args: argparse.Namespace) -> int:
    cli, config, confdir = _target(config, args)
    _edge_preflight(config, args)
    applied = deploy.apply(cli, config, confdir)
    _print_rendered(applied.rendered)
    print(f"reloaded  {', '.join(deploy.RELOADS)}")
    if not applied.reloaded.captured:
        print("note: Asterisk's log of the reloads is not readable here; see its messages log")
    effect: tuple[Problem, ...] = ()
    installed = _edge_install(config, args)
    if installed is not None:
        layout = layout_for(config, args.edge_target)
        done = edge_deploy.put_into_effect(config, layout, installed, restart=args.restart_edge)
        for line in done.done:
            print(line)
        effect = done.problems
    problems = (*applied.reloaded.problems, *applied.problems, *effect)
    return _report([*problems, *_edge_problems(config, args)], "apply")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("deploy", help="put our configuration on a production Asterisk")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    render = actions.add_parser(
        "render", help="write our *_112.conf include files and print the #include lines"
    )
    render.add_argument(
        "--target", type=Path, required=True, metavar="DIR",
        help="the Asterisk config directory, e.g. /etc/asterisk",
    )
    _edge_target(render)
    render.set_defaults(handler=_render)
    for name, handler, text in (
        ("check", _check, "check that Asterisk loaded our configuration, and the prompts"),
        ("apply", _apply, "render, reload only the modules concerned, then check"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "--asterisk-cli", metavar="CMD",
            help='command prefix that runs one CLI command, e.g. "asterisk -rx" '
                 "(default: the sandbox)",
        )
        action.add_argument(
            "--target", type=Path, metavar="DIR",
            help="Asterisk's config directory (default: as Asterisk reports it)",
        )
        _edge_target(action)
        if name == "apply":
            action.add_argument(
                "--restart-edge", action="store_true",
                help=f"restart the edge ({edge_deploy.UNIT}, systemd only) when kamailio.cfg "
                     "changed; phones re-register within 2 min",
            )
        action.set_defaults(handler=handler)


def _edge_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--edge-target", type=Path, metavar="DIR",
        help="where the edge's kamailio.cfg and data files go, e.g. /etc/kamailio "
             "(default: edge.config_dir, else edge.runtime_dir)",
    )
