"""Asterisk does not build the events of manager.conf's disabledevents: none may be one we read."""

from __future__ import annotations

from pathlib import Path

from telephony.contract import AMI_EVENTS, DISABLED_AMI_EVENTS
from tests.unit.test_pbx import _render


def test_no_event_the_service_or_console_reads_is_disabled() -> None:
    assert not set(DISABLED_AMI_EVENTS) & set(AMI_EVENTS)


def test_the_sandbox_disables_them_in_general(tmp_path: Path) -> None:
    general = _render(tmp_path)["manager.conf"].split("#include")[0]
    assert f"disabledevents = {','.join(DISABLED_AMI_EVENTS)}" in general
