"""What an operator does on the console, applied and entered into the audit chain.

How console actions reach the chain: as an AMI ``UserEvent: ConsoleAction`` (with ``User``,
``Operation`` and, for a call, its ``Linkedid``; Asterisk drops ``Action`` headers from a
UserEvent), which serve's audit writer records like any
other event. We chose that over a second chain of the console's own because:

* the chain keeps one writer and one order: a classification sits between the call's own
  events, and ``audit verify``, the checkpoints and the PostgreSQL outage spool cover it with
  no new code;
* the console never holds the chain lock, so a slow or stopped console cannot delay call
  auditing (the isolation the console runs in a process of its own for).

The cost: an action needs AMI (the console refuses with 503 when it is down, saying why) and
is recorded only while serve runs (serve's reconcile does not cover UserEvents, so the console
also logs every action itself). Operator text never reaches Asterisk config or dialplan: it
travels as one JSON-encoded header value of a UserEvent, which Asterisk only relays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import structlog
from sqlalchemy import Engine

from telephony.ami import AMIConnection, AMIError
from telephony.callbacks import items as callbacks
from telephony.callbacks.dial import originate_callback
from telephony.config import Config
from telephony.console.words import AUDIT_EVENT
from telephony.location.region import Regions, queue_name
from telephony.operators import presence
from telephony.operators.presence import State
from telephony.operators.roster import Operator
from telephony.pbx.render import queues

log = structlog.get_logger(__name__)


class ActionRefused(Exception):
    """The action cannot be done now; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def encode_note(text: str) -> str:
    """One AMI header line that gives back exactly the text typed (JSON, UTF-8)."""
    return json.dumps(text, ensure_ascii=False)


class Actions:
    def __init__(self, config: Config, engine: Engine, ami: AMIConnection, regions: Regions,
                 roster: Mapping[str, Operator]) -> None:
        self._config = config
        self._engine = engine
        self._ami = ami
        self._regions = regions
        self._roster = roster

    def _need_ami(self) -> None:
        if not self._ami.connected:
            raise ActionRefused(503, "Asterisk (AMI) is not connected: the action is not done "
                                     "and not recorded; try again when the console says so")

    def audit(self, user: str, action: str, linkedid: str = "", **fields: str) -> None:
        """Send the ConsoleAction UserEvent that serve's writer enters into the chain."""
        headers: dict[str, Any] = {"UserEvent": AUDIT_EVENT, "Operation": action, "User": user,
                                   **fields}
        if linkedid:
            # The audit writer takes no event with half a channel identity (an id injected
            # without its pair is quarantined: telephony.ami.identity). A call's linkedid is
            # the uniqueid of the channel it began with, the caller's, so the pair names it.
            headers["Linkedid"] = linkedid
            headers["Uniqueid"] = linkedid
        log.info("console.action", user=user, action=action, linkedid=linkedid or None,
                 **{k.lower(): v for k, v in fields.items() if k != "Note"})
        try:
            self._ami.send_action("UserEvent", **headers)
        except AMIError as exc:
            raise ActionRefused(503, f"Asterisk (AMI) did not take the audit record: {exc}") \
                from exc

    def login(self, user: str, address: str) -> None:
        try:
            self.audit(user, "login", Client=address)
        except ActionRefused as exc:
            # Logging in must work while AMI is down, so the operator can see that it is.
            log.warning("console.login_not_audited", user=user, error=str(exc))

    def classify(self, user: str, linkedid: str, category: str, note: str) -> None:
        self._need_ami()
        self.audit(user, "classify", linkedid, Category=category, Note=encode_note(note))

    def handover(self, user: str, linkedid: str, channel: str, regency_code: str) -> None:
        """A blind transfer of the caller to *8 + the regency's digits: what the phone does."""
        self._need_ami()
        regency = self._regions.regencies.get(regency_code)
        if regency is None or not regency.launch or queue_name(regency_code) not in set(
                queues(self._config)):
            raise ActionRefused(422, f"regency {regency_code} has no queue to hand over to")
        exten = self._config.operators.handover_prefix + regency_code.replace(".", "")
        self.audit(user, "handover", linkedid, To=queue_name(regency_code))
        try:
            self._ami.send_action("BlindTransfer", Channel=channel,
                                  Context="from-operator-112", Exten=exten)
        except AMIError as exc:
            raise ActionRefused(409, f"Asterisk refused the handover: {exc}") from exc

    def set_presence(self, user: str, op: Operator, state: State, reason: str | None) -> None:
        """The CLI's semantics: the database first (the truth), then Asterisk's queues."""
        self._need_ami()
        if state is State.AVAILABLE and self._config.operators.require_tls \
                and not presence.tls_contacts(self._ami, op, self._config.edge.phones_via_edge):
            raise ActionRefused(409, f"{op.id} has no phone registered over TLS, and "
                                     "operators.require_tls is on")
        presence.set_state(self._engine, op.id, state, reason)
        self.audit(user, "presence", Operator=op.id, State=state.value, Reason=reason or "")
        roster = tuple(self._roster.values())
        try:
            presence.restore(self._ami, roster, presence.states(self._engine), self._regions,
                             queues(self._config))
        except AMIError as exc:
            raise ActionRefused(503, f"saved, but not applied to Asterisk yet: {exc}") from exc

    def take_callback(self, user: str, item_id: int, op: Operator) -> callbacks.CallbackItem:
        self._need_ami()
        if not self._config.callbacks.trunk_contact:
            raise ActionRefused(409, "callbacks.trunk_contact is empty: no route to citizens")
        item = _mark(self._engine, item_id, callbacks.Status.TAKEN, op.id)
        self.audit(user, "callback-take", item.last_linkedid, CallbackId=str(item.id),
                   Operator=op.id)
        try:
            originate_callback(self._ami, item, op)
        except AMIError as exc:
            raise ActionRefused(503, f"Asterisk did not place the callback: {exc}") from exc
        return item

    def finish_callback(self, user: str, item_id: int, outcome: str) -> callbacks.CallbackItem:
        self._need_ami()
        item = _mark(self._engine, item_id, callbacks.Status.DONE)
        self.audit(user, "callback-done", item.last_linkedid, CallbackId=str(item.id),
                   Outcome=outcome)
        return item


def _mark(engine: Engine, item_id: int, status: callbacks.Status,
          operator: str | None = None) -> callbacks.CallbackItem:
    try:
        return callbacks.mark(engine, item_id, status, operator)
    except callbacks.CallbackError as exc:
        # No such item, or one already done: either way the list the page showed is stale.
        raise ActionRefused(409, str(exc)) from exc
