"""`telephony test-call`: place a real 112 call through the configured trunk address.

    telephony test-call [--from NUMBER] [--pani VALUE] [--pidf LAT,LON,R]
                        [--key DIGIT --key-at S] [--hold S] [--json]

It reports whether the call was answered, the IVR's choice, the queue and regency it was
routed to, which operators' phones rang, and the audit's record of the call. The exit
status is 0 when the call was answered, queued and recorded, else 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from telephony.config import Config
from telephony.phone.rehearsal import Plan, Report, fresh_number, place


def _pidf(text: str) -> tuple[float, float, float]:
    try:
        lat, lon, radius = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LAT,LON,R (degrees, degrees, metres), got {text!r}"
        ) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a place on Earth")
    return lat, lon, radius


def _digit(text: str) -> str:
    if len(text) != 1 or text not in "0123456789*#":
        raise argparse.ArgumentTypeError(f"expected one of 0-9, * or #, got {text!r}")
    return text


def _text(report: Report) -> str:
    yes = "yes" if report.answered else "no"
    ivr = (f"{report.emergency_type or '-'}, language {report.language or '-'}"
           + (f" (failed open: {report.failed_open})" if report.failed_open else ""))
    lines = [
        f"test call from {report.number} to {report.target}",
        f"  answered    {yes} ({report.status})",
        f"  linkedid    {report.linkedid or '-'}",
        f"  ivr choice  {ivr}",
        f"  queue       {report.queue or '-'}",
        f"  regency     {report.regency or '-'} (location: {report.location_source or '-'})",
        f"  rang        {', '.join(report.rang) or 'no operator phone'}",
        f"  answered by {report.answered_by or 'nobody'}",
    ]  # fmt: skip
    lines += [f"  problem     {problem}" for problem in report.problems]
    if report.audit_text:
        lines += ["audit record", *(f"  {line}" for line in report.audit_text.splitlines())]
    return "\n".join(lines)


def _test_call(config: Config, args: argparse.Namespace) -> int:
    plan = Plan(args.number or fresh_number(), args.pani, args.pidf, args.key, args.key_at,
                args.hold)  # fmt: skip
    report = place(config, plan)
    if args.json:
        payload = dataclasses.asdict(report)
        del payload["audit_text"]
        print(json.dumps({**payload, "ok": report.ok}))
    else:
        print(_text(report))
    return 0 if report.ok else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "test-call", help="place a real 112 call through this deployment and report on it"
    )
    parser.add_argument("--from", dest="number", metavar="NUMBER",
                        help="the caller's number, as P-Asserted-Identity (default: a fresh "
                             "+62811... number)")
    parser.add_argument("--pani", metavar="VALUE", help="a P-Access-Network-Info value "
                        '(the caller\'s cell), e.g. "3GPP-E-UTRAN-FDD; '
                        'utran-cell-id-3gpp=510100A010000001; network-provided"')
    parser.add_argument("--pidf", type=_pidf, metavar="LAT,LON,R",
                        help="send a PIDF-LO circle (location by value, RFC 6442); a negative "
                             "latitude needs the = form: --pidf=-7.98,112.63,50")
    parser.add_argument("--key", type=_digit, metavar="DIGIT",
                        help="press this key in the IVR (RFC 4733)")
    parser.add_argument("--key-at", type=float, default=1.0, metavar="S",
                        help="seconds after the answer to press --key (default 1)")
    parser.add_argument("--hold", type=float, default=10.0, metavar="S",
                        help="seconds from the answer to hanging up (default 10)")
    parser.add_argument("--json", action="store_true", help="the report as one JSON object")
    parser.set_defaults(handler=_test_call)
