"""The audit trail: every AMI event hash-chained in ``audit_events``, with ``calls`` and
``call_legs`` projected from them, a spool for database outages and signed checkpoints."""

from __future__ import annotations

from telephony.audit.chain import Problem, VerifyReport
from telephony.audit.models import AppendOnlyViolation, AuditEvent, Call, CallLeg
from telephony.audit.projection import LegRole, Outcome
from telephony.audit.verify import verify
from telephony.audit.writer import AuditWriter, WriterMetrics
from telephony.contract import AUDITED_EVENTS

__all__ = [
    "AUDITED_EVENTS",
    "AppendOnlyViolation",
    "AuditEvent",
    "AuditWriter",
    "Call",
    "CallLeg",
    "LegRole",
    "Outcome",
    "Problem",
    "VerifyReport",
    "WriterMetrics",
    "verify",
]
