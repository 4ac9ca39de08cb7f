"""`telephony test-call`: one real 112 call through this deployment, and what became of it.

The call leaves from the trunk's address (`asterisk.trunk_address`), so Asterisk takes it
for the mobile network's. The pjsua2 phone feeds it from the capture device for its whole
length (Media.capture), so RTP flows and a key reaches the IVR as RFC 4733 whenever it is
pressed. AMI tells what the dialplan did (the IVR's choice, the queue, the operators'
phones that rang); the audit store holds the record `telephony serve` wrote.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from telephony.ami import Frame
from telephony.audit.report import show_call
from telephony.audit.views import detail_payload, detail_text
from telephony.config import Config
from telephony.contract import UserEvent
from telephony.control import EventTimeout, Watcher, watching
from telephony.pbx.render import host_port
from telephony.phone.handles import BodyPart, CallFailed, CallHandle
from telephony.phone.phone import Phone
from telephony.store import open_database

ANSWER_TIMEOUT_S = 15.0
HANGUP_TIMEOUT_S = 10.0
AUDIT_WAIT_S = 15.0
PIDF_CID = "test-call@telephony.invalid"
PIDF = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
    xmlns:gbp="urn:ietf:params:xml:ns:pidf:geopriv10:basicPolicy"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:gml="http://www.opengis.net/gml"
    xmlns:gs="http://www.opengis.net/pidflo/1.0"
    entity="pres:{number}@telephony.invalid">
  <dm:device id="test-call">
    <gp:geopriv>
      <gp:location-info>
        <gs:Circle srsName="urn:ogc:def:crs:EPSG::4326">
          <gml:pos>{lat} {lon}</gml:pos>
          <gs:radius uom="urn:ogc:def:uom:EPSG::9001">{radius}</gs:radius>
        </gs:Circle>
      </gp:location-info>
      <gp:usage-rules>
        <gbp:retransmission-allowed>false</gbp:retransmission-allowed>
      </gp:usage-rules>
      <gp:method>GPS</gp:method>
    </gp:geopriv>
  </dm:device>
</presence>
"""


def fresh_number() -> str:
    """An Indonesian mobile number of its own, so that the call's events stand out."""
    return f"+62811{secrets.randbelow(10**7):07d}"


@dataclass(frozen=True)
class Plan:
    number: str
    pani: str | None = None
    pidf: tuple[float, float, float] | None = None  # latitude, longitude, radius (m)
    key: str | None = None
    key_at_s: float = 1.0  # after the answer
    hold_s: float = 10.0  # from the answer to our hangup


@dataclass
class Report:
    number: str
    target: str
    answered: bool = False
    status: str = ""
    linkedid: str | None = None
    emergency_type: str | None = None
    language: str | None = None
    failed_open: str | None = None
    queue: str | None = None
    regency: str | None = None
    location_source: str | None = None
    rang: list[str] = field(default_factory=list)
    answered_by: str | None = None
    audit: object = None
    audit_text: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.answered and self.queue is not None and self.audit is not None


def headers(plan: Plan, config: Config) -> dict[str, str]:
    found = {"P-Asserted-Identity": f"<sip:{plan.number}@{config.asterisk.trunk_address};"
                                    "user=phone>"}
    if plan.pani:
        found["P-Access-Network-Info"] = plan.pani
    if plan.pidf:
        found["Geolocation"] = f"<cid:{PIDF_CID}>"
        found["Geolocation-Routing"] = "yes"
    return found


def parts(plan: Plan) -> tuple[BodyPart, ...]:
    if plan.pidf is None:
        return ()
    lat, lon, radius = plan.pidf
    body = PIDF.format(number=plan.number, lat=lat, lon=lon, radius=radius)
    return (BodyPart("application/pidf+xml", body, (("Content-ID", f"<{PIDF_CID}>"),)),)


def place(config: Config, plan: Plan) -> Report:
    """Call 112, press the key, hold, hang up; then read what AMI and the audit saw."""
    ast, edge = config.asterisk, config.edge
    # The way the network calls: to the SIP edge unless this deployment runs without it.
    front = (edge.bind, edge.port) if edge.enabled else (ast.sip_bind, ast.sip_port)
    target = f"sip:112@{host_port(*front)}"
    report = Report(plan.number, target)
    with watching(config) as events, Phone(ast.trunk_address, user=plan.number) as phone:
        call = phone.call(target, headers(plan, config), capture=True, parts=parts(plan))
        try:
            call.wait_confirmed(ANSWER_TIMEOUT_S)
        except CallFailed as exc:
            report.status = f"{exc.status_code or '-'} {exc.reason}".strip()
            return report
        answered = time.monotonic()
        report.answered = True
        report.status = f"{call.last_status_code} {call.last_reason}"
        _converse(call, plan, answered)
        _observe(events, report)
    _read_audit(config, report)
    return report


def _converse(call: CallHandle, plan: Plan, answered: float) -> None:
    if plan.key:
        # The IVR's prompts signal nothing to the caller: a key at a time, as a caller does.
        time.sleep(max(0.0, answered + plan.key_at_s - time.monotonic()))
        call.send_dtmf(plan.key)
    time.sleep(max(0.0, answered + plan.hold_s - time.monotonic()))  # the call's length
    call.hangup()
    call.wait_disconnected(HANGUP_TIMEOUT_S)


def _observe(events: Watcher, report: Report) -> None:
    try:
        first = events.wait_for("Newchannel", lambda f: f.get("CallerIDNum") == report.number,
                                timeout=1.0)  # fmt: skip
    except EventTimeout:
        report.problems.append(f"AMI showed no channel with caller number {report.number}")
        return
    linkedid = first.frame.get("Linkedid") or first.frame.get("Uniqueid")
    report.linkedid = linkedid
    frames = events.for_call(linkedid or "")
    for frame in _user_events(frames, UserEvent.IVR_LOCATION):
        report.regency = frame.get("RegencyCode") or None
        report.location_source = frame.get("Source") or None
    for frame in _user_events(frames, UserEvent.IVR_FAIL_OPEN):
        report.failed_open = frame.get("Reason") or frame.get("IVRStatus") or "yes"
    for frame in _user_events(frames, UserEvent.CALL_QUEUED):
        report.queue = frame.get("Queue")
        report.emergency_type = frame.get("EmergencyType")
        report.language = frame.get("Language")
    for frame in frames:
        member = frame.get("MemberName") or frame.get("Interface") or ""
        if frame.event == "AgentCalled" and member not in report.rang:
            report.rang.append(member)
        if frame.event == "AgentConnect":
            report.answered_by = member
    if report.queue is None:
        report.problems.append("the dialplan never queued the call (no UserEvent CallQueued)")


def _user_events(frames: list[Frame], name: str) -> list[Frame]:
    return [f for f in frames if f.event == "UserEvent" and f.get("UserEvent") == name]


def _read_audit(config: Config, report: Report) -> None:
    if report.linkedid is None:
        return
    engine = open_database(config)
    deadline = time.monotonic() + AUDIT_WAIT_S
    try:
        while True:
            with Session(engine) as session:
                detail = show_call(session, report.linkedid)
                if detail is not None and detail.call.ended_at is not None:
                    report.audit = detail_payload(detail)
                    report.audit_text = detail_text(detail)
                    return
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the store announces no commit to a reader: poll it
    finally:
        engine.dispose()
    report.problems.append(
        f"no ended call {report.linkedid} in the audit store after {AUDIT_WAIT_S:.0f}s: "
        "is telephony serve running?"
    )
