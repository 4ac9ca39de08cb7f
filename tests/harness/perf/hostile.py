"""Drills with hostile or broken input on the SIP side.

flood: INVITEs at 300/s from a loopback address that is not the trunk while the trunk
places 112 calls; at least 99% of the trunk's calls are answered, no flood INVITE is, and
the flood is seen where it is stopped: behind the edge (the default), Kamailio blocked the
source (its counters); in direct mode, Asterisk's security log. malformed: INVITEs whose
identity, location or body are broken or oversized; every one of those calls must still
ring an operator with the configuration a centre runs by default, and none of them may file
an audit row under the Linkedid that the CR/LF kinds forge. It then probes whether this
Asterisk survives parsing a PIDF-LO without <usage-rules> itself, sent round the edge as
the edge would relay it: Asterisk 22.10.1 does not, which is why the edge strips such
bodies and direct mode refuses location.pidf_lo. The probe is reported, not judged.
"""

from __future__ import annotations

import math

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telephony.audit import AuditEvent
from telephony.contract import TRUNK_HEADER
from telephony.pbx.process import AsteriskError
from telephony.store import open_database
from tests.harness import sipp
from tests.harness.net import STRANGER, free_udp
from tests.harness.perf.centre import Centre
from tests.harness.perf.load import IDENTITY, SDP, Calls, Invite, Load, Phase
from tests.harness.perf.verdict import Context, Verdict
from tests.harness.sandbox import INSIDE

FLOOD_CPS = 300
TRUNK_ANSWERED = 0.99
_PIDF_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
              '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
              'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
              'xmlns:gml="http://www.opengis.net/gml" entity="pres:caller@mno.example">')
_BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
                   '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                   '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
                   '<presence xmlns="urn:ietf:params:xml:ns:pidf">&lol3;</presence>')
_GEOLOCATED = "Geolocation: <cid:loc@mno.example>\nGeolocation-Routing: yes"  # fmt: skip


def _multipart(pidf: str) -> str:
    return "\n".join(("--b1", "Content-Type: application/sdp", "", SDP, "--b1",
                      "Content-Type: application/pidf+xml", "Content-ID: <loc@mno.example>",
                      "", pidf, "--b1--"))  # fmt: skip


def _point(position: str, rules: str = "<gp:usage-rules/>") -> str:
    return (f"{_PIDF_HEAD}<tuple id='t'><status><gp:geopriv><gp:location-info>"
            "<gml:Point srsName='urn:ogc:def:crs:EPSG::4326'>"
            f"<gml:pos>{position}</gml:pos></gml:Point></gp:location-info>{rules}"
            "</gp:geopriv></status></tuple></presence>")


MULTIPART = "multipart/mixed;boundary=b1"
# Issue 12: percent-encoded CR/LF that Asterisk 22.10.1 writes raw into AMI (CallerIDNum,
# Exten), with a forged event and Linkedid; pjproject decodes it. No P-Asserted-Identity.
INJECTION = ("%0D%0A%0D%0AEvent%3A%20UserEvent%0D%0AUserEvent%3A%20Forged%0D%0A"
             "Linkedid%3A%20fake-1%0D%0A")
FORGED_LINKEDID = "fake-1"
_CELL_ONLY = "P-Access-Network-Info: 3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=[field1]"
# Each kind of broken INVITE; every one still comes from the trunk with a number of its own.
MALFORMED = {
    "broken PANI": Invite(headers=(
        "P-Asserted-Identity: <sip:[field0]@mno.example;user=phone>\n"
        'P-Access-Network-Info: 3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=51Z1G0"; ;;=;'
        " utran-cell-id-3gpp=99999999999999999999999")),
    "broken identity": Invite(headers=(
        "P-Asserted-Identity: \"\\\" <tel:;;;>\n"
        "P-Access-Network-Info: 3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=[field1]")),
    "Geolocation to nowhere": Invite(headers=f"{IDENTITY}\n{_GEOLOCATED}"),
    "Geolocation garbage": Invite(headers=f"{IDENTITY}\nGeolocation: <<<not a uri>>>;;\n"
                                          "Geolocation-Routing: perhaps"),
    "PIDF-LO not XML": Invite(headers=f"{IDENTITY}\n{_GEOLOCATED}", content_type=MULTIPART,
                              body=_multipart(f"{_PIDF_HEAD}<gml:pos>1 2</gml")),
    "PIDF-LO entity bomb": Invite(headers=f"{IDENTITY}\n{_GEOLOCATED}", content_type=MULTIPART,
                                  body=_multipart("[pidf]"), keys=(("pidf", _BILLION_LAUGHS),)),
    "PIDF-LO impossible point": Invite(
        headers=f"{IDENTITY}\n{_GEOLOCATED}", content_type=MULTIPART,
        body=_multipart(_point("999.5 -4000 NaN"))),
    # RFC 4119 makes <usage-rules> mandatory; a handset or network that leaves it out
    # must still get through.
    "PIDF-LO without usage-rules": Invite(
        headers=f"{IDENTITY}\n{_GEOLOCATED}", content_type=MULTIPART,
        body=_multipart(_point("-7.98 112.63", rules=""))),
    "CR/LF in From": Invite(headers=_CELL_ONLY, user=f"[field0]{INJECTION}"),
    "CR/LF in Request-URI": Invite(service=f"112{INJECTION}"),
    "oversized headers": Invite(headers=(
        f"{IDENTITY}\nX-Padding: {'x' * 4000}\n"
        f"P-Access-Network-Info: 3GPP-E-UTRAN-FDD; utran-cell-id-3gpp={'5' * 2000}")),
}  # fmt: skip


def flood(ctx: Context) -> Verdict:
    window_s = 10.0 if ctx.quick else 30.0
    trunk_load = Load(rate=2, calls=int(2 * window_s), hold_s=4, key_share=1.0, audio=False)
    with ctx.centre("flood") as centre:
        centre.serve("serve").ready()
        security = centre.layout.log / "security.log"
        offset = security.stat().st_size if security.exists() else 0
        edge_before = centre.edge.rpc.statistics().counters if centre.edge else {}
        scenario = sipp.render("flood.xml", ctx.workdir / "flood")
        attackers = sipp.Sipp(
            "flood", scenario, centre.sip_target, source=STRANGER, port=free_udp(STRANGER),
            workdir=ctx.workdir / "flood",
            args=("-s", "112", "-r", str(FLOOD_CPS), "-m", str(int(FLOOD_CPS * window_s)),
                  "-l", str(FLOOD_CPS * 10), "-mp", str(free_udp(STRANGER))),
            limit_s=window_s + 60,
        ).start()  # fmt: skip
        trunk = Calls(centre, trunk_load, ctx.workdir, "flood-trunk").start()
        phase = trunk.wait()
        attackers.wait()
        flooded = attackers.counts()
        accepted = sum(1 for m in attackers.marks() if m.kind == "accepted")
        with security.open("rb") as fh:
            fh.seek(offset)
            logged = sum(1 for line in fh if STRANGER.encode() in line)
        edge = ({k: v - edge_before[k] for k, v in centre.edge.rpc.statistics().counters.items()}
                if centre.edge else None)  # fmt: skip
    sent = flooded.created if flooded else 0
    refused = flooded.successful if flooded else 0
    answered = phase.answered / trunk_load.calls
    if edge is not None:
        # Stopped at the edge: a few 403s, then the source is blocked and dropped unanswered.
        seen = edge["flood_blocked_sources"] >= 1 and edge["flood_dropped"] > 0
        where = (f"edge: {edge['refused_untrusted']} refused (403), source blocked "
                 f"{edge['flood_blocked_sources']}x, {edge['flood_dropped']} dropped; "
                 f"{logged} reached Asterisk's security log")
    else:
        seen = refused > 0 and logged > 0
        where = f"{logged} security events about {STRANGER} (direct mode)"
    ok = answered >= TRUNK_ANSWERED and accepted == 0 and seen
    figure = (f"trunk: {phase.answered}/{trunk_load.calls} answered ({answered:.1%}, bar "
              f"{TRUNK_ANSWERED:.0%}), setup p99 "
              f"{phase.setup_ms.p99 if phase.setup_ms else math.nan:.1f} ms; flood from "
              f"{STRANGER}: {sent} INVITEs in {window_s:.0f} s, {refused} refused, {accepted} "
              f"answered; {where}")  # fmt: skip
    return Verdict("flood", ok, figure, {"trunk": phase.as_dict(), "flood_sent": sent,
                                         "flood_refused": refused, "flood_answered": accepted,
                                         "security_events": logged, "edge": edge,
                                         "trunk_answered_share": round(answered, 4)})  # fmt: skip


def _alive(centre: Centre) -> bool:
    try:
        centre.asterisk.cli("core show uptime", timeout=5)
    except AsteriskError:
        return False
    return True


def _pidf_by_value_survives(ctx: Context) -> bool | None:
    """Whether Asterisk itself survives a PIDF-LO without usage-rules: sent round the edge,
    from the edge's address with its trunk header. None in direct mode, which refuses
    location.pidf_lo, so that Asterisk never parses a trunk's PIDF-LO there."""
    if ctx.direct:
        return None
    load = Load(rate=1, calls=1, hold_s=1, key_share=1.0, audio=False)
    bad = MALFORMED["PIDF-LO without usage-rules"]
    invite = Invite(headers=f"{bad.headers}\n{TRUNK_HEADER}: mno",
                    content_type=bad.content_type, body=bad.body)
    with ctx.centre("malformed-pidf-by-value") as centre:
        centre.serve("serve").ready()
        Calls(centre, load, ctx.workdir, "malformed-pidf-by-value-calls", invite,
              source=INSIDE, target=centre.asterisk_target).start().wait()  # fmt: skip
        return _alive(centre)


def _forged_rows(centre: Centre) -> int:
    """Audit events filed under the Linkedid the injected text claims (must be none)."""
    engine = open_database(centre.config)
    try:
        with Session(engine) as session:
            query = select(func.count()).select_from(AuditEvent)
            return session.scalar(query.where(AuditEvent.linkedid == FORGED_LINKEDID)) or 0
    finally:
        engine.dispose()


def malformed(ctx: Context) -> Verdict:
    """One kind after the other, so that a kind that brings Asterisk down is named; after
    such a crash the remaining kinds go to a fresh centre. The callers press a key at once:
    the IVR reads the broken headers, then queues them without waiting out its menu."""
    per_kind = ctx.sized(2, 6)
    load = Load(rate=2, calls=per_kind, hold_s=3, key_share=1.0, audio=False)
    pending = list(MALFORMED.items())
    outcomes: dict[str, tuple[Phase, bool]] = {}
    forged = 0
    while pending:
        with ctx.centre(f"malformed-{len(outcomes)}") as centre:
            centre.serve("serve").ready()
            while pending:
                kind, invite = pending.pop(0)
                name = f"malformed-{len(outcomes)}-calls"
                phase = Calls(centre, load, ctx.workdir, name, invite).start().wait()
                crashed = not _alive(centre)
                outcomes[kind] = (phase, crashed)
                if crashed:
                    break
            forged += _forged_rows(centre)
    lines, ok = [], forged == 0
    for kind, (phase, crashed) in outcomes.items():
        rung = phase.answered - phase.unrung
        ok = ok and not crashed and phase.failed == 0 and rung == per_kind
        ring = f" (ring p99 {phase.ring_s.p99:.2f} s)" if phase.ring_s else ""
        lines.append(f"{kind} {rung}/{per_kind}{ring}{' ASTERISK CRASHED' if crashed else ''}")
    by_value = _pidf_by_value_survives(ctx)
    probe = ("not probed (direct mode)" if by_value is None else "survives" if by_value else
             "CRASHES Asterisk: only the edge's check makes location.pidf_lo safe")  # fmt: skip
    return Verdict(
        "malformed", ok,
        "rang an operator: " + "; ".join(lines)
        + f". Audit rows under the forged Linkedid: {forged}. Probe, PIDF-LO without "
        f"usage-rules sent round the edge to Asterisk (pidf_lo = true): {probe}",
        {"kinds": {kind: {**phase.as_dict(), "asterisk_crashed": crashed}
                   for kind, (phase, crashed) in outcomes.items()},
         "pidf_by_value_survives": by_value, "forged_audit_rows": forged},
    )  # fmt: skip
