"""Operator presence: logged in, paused (and why), or out. The database is the truth.

Asterisk's queue membership is a copy. `plan()` (pure) compares the two and lists the AMI
actions that make Asterisk match the database; `restore()` runs them. The service restores
on every AMI (re)connection, so a restarted Asterisk or service gets its members back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import DateTime, Engine, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from telephony.ami import AMIConnection, Frame
from telephony.db import Base
from telephony.errors import TelephonyError
from telephony.location.region import Regions
from telephony.operators.roster import Operator, memberships

log = structlog.get_logger(__name__)

PAUSE_REASONS = ("break", "wrap-up", "training", "other")


class State(StrEnum):
    LOGGED_OUT = "logged-out"
    AVAILABLE = "available"
    PAUSED = "paused"


class Presence(Base):
    """Current presence per operator; every change is also kept in PresenceChange."""

    __tablename__ = "operator_presence"

    operator_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PresenceChange(Base):
    __tablename__ = "operator_presence_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Member:
    """One queue member as Asterisk reports it (QueueMember event)."""

    queue: str
    interface: str
    paused: bool


@dataclass(frozen=True)
class Action:
    name: str
    fields: Mapping[str, str]


def set_state(engine: Engine, operator_id: str, state: State, reason: str | None = None) -> None:
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        row = session.get(Presence, operator_id)
        if row is None:
            row = Presence(operator_id=operator_id)
            session.add(row)
        row.state, row.pause_reason, row.updated_at = state.value, reason, now
        session.add(PresenceChange(operator_id=operator_id, state=state.value,
                                   pause_reason=reason, at=now))


def states(engine: Engine) -> dict[str, Presence]:
    with Session(engine) as session:
        rows = session.scalars(select(Presence)).all()
        session.expunge_all()
    return {row.operator_id: row for row in rows}


def members_from(events: Iterable[Frame]) -> list[Member]:
    return [
        Member(e.get("Queue") or "", e.get("Location") or e.get("Interface") or "",
               (e.get("Paused") or "0") == "1")
        for e in events
        if e.event == "QueueMember"
    ]


def plan(
    roster: Sequence[Operator],
    presence: Mapping[str, Presence],
    members: Sequence[Member],
    regions: Regions,
    queues: Iterable[str],
) -> list[Action]:
    """The AMI actions that make Asterisk's queue members match the database (pure)."""
    existing = set(queues)
    live = {(m.queue, m.interface): m for m in members}
    wanted: dict[tuple[str, str], tuple[Operator, Presence]] = {}
    for op in roster:
        row = presence.get(op.id)
        if row is None or row.state == State.LOGGED_OUT:
            continue
        for queue in memberships(op, regions):
            if queue in existing:
                wanted[(queue, op.interface)] = (op, row)
    actions: list[Action] = []
    for (queue, interface), (op, row) in wanted.items():
        paused = row.state == State.PAUSED
        member = live.get((queue, interface))
        if member is None:
            actions.append(Action("QueueAdd", {
                "Queue": queue, "Interface": interface, "MemberName": op.id,
                "StateInterface": interface, "Penalty": "0",
                "Paused": "true" if paused else "false", "Reason": row.pause_reason or "",
            }))
        elif member.paused != paused:
            actions.append(Action("QueuePause", {
                "Queue": queue, "Interface": interface, "Paused": "true" if paused else "false",
                "Reason": row.pause_reason or "",
            }))
    ours = {op.interface for op in roster}
    for (queue, interface) in live:
        if (queue, interface) not in wanted and (interface in ours or queue in existing):
            actions.append(Action("QueueRemove", {"Queue": queue, "Interface": interface}))
    return actions


class InsecurePhone(TelephonyError):
    """operators.require_tls, and the operator's phone is not registered over TLS."""


def tls_contacts(ami: AMIConnection, op: Operator, via_edge: bool = False) -> list[str]:
    """The operator's reachable contacts that Asterisk reaches over TLS.

    PJSIP_DIAL_CONTACTS lists reachable contacts only; `rewrite_contact = yes` makes each
    contact's transport the one its REGISTER really came over, whatever the phone wrote.
    `via_edge` (edge.registrar): the one contact is the edge, which under require_tls
    registers and answers for TLS phones only, so reachable means on TLS.
    """
    answer = ami.send_action("Getvar", Variable=f"PJSIP_DIAL_CONTACTS({op.id})")
    found = []
    for dial in filter(None, (answer.get("Value") or "").split("&")):
        uri = dial.split("/", 2)[-1].lower()  # PJSIP/<endpoint>/<contact URI>
        if via_edge or uri.startswith("sips:") or ";transport=tls" in uri:
            found.append(dial)
    return found


def restore(
    ami: AMIConnection,
    roster: Sequence[Operator],
    presence: Mapping[str, Presence],
    regions: Regions,
    queues: Iterable[str],
) -> list[Action]:
    """Bring Asterisk in line with the database; returns what it changed."""
    status = ami.send_list_action("QueueStatus", timeout=10)
    actions = plan(roster, presence, members_from(status.events), regions, queues)
    for action in actions:
        fields: dict[str, Any] = {k: v for k, v in action.fields.items() if v}
        ami.send_action(action.name, **fields)
    log.info("presence.restored", actions=len(actions))
    return actions
