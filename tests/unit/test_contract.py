"""The names Python and the dialplan share (telephony.contract) are the dialplan's names: the
templates receive the queue prefixes and UserEvent names, and use the channel variables."""

from __future__ import annotations

import re
from pathlib import Path

from telephony.config import load
from telephony.contract import (
    OVERFLOW_QUEUE,
    PROVINCE_QUEUE,
    REGENCY_QUEUE,
    UserEvent,
    Var,
    overflow_queue,
    province_queue,
    regency_queue,
)
from telephony.location.region import queue_name
from telephony.pbx.layout import Layout
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.render import render_sandbox
from telephony.resources import shipped


def _rendered(tmp_path: Path) -> dict[str, str]:
    config = load(None, env={}, overrides=[f"asterisk.runtime_dir={tmp_path}"])
    install = AsteriskInstall(("asterisk",), Path("/mods"), Path("/share"), "Asterisk 22.1", "t")
    return render_sandbox(config, install, Layout(tmp_path))


def test_queue_names_come_from_the_prefixes() -> None:
    assert (regency_queue("35.07"), overflow_queue("35.07"), province_queue("35")) == (
        "reg-3507", "ovf-3507", "prov-35",
    )  # fmt: skip
    assert queue_name("35.07") == regency_queue("35.07")
    assert queue_name("35") == province_queue("35")


def test_the_dialplan_template_spells_no_queue_prefix_or_user_event_itself() -> None:
    text = (shipped("dialplans") / "extensions_112.conf").read_text()
    template = "\n".join(line for line in text.splitlines() if not line.startswith(";"))
    for prefix in (REGENCY_QUEUE, OVERFLOW_QUEUE, PROVINCE_QUEUE):
        assert prefix not in template, prefix
    assert not re.findall(r"UserEvent\((?!\{\{)", template)


def test_every_queue_and_user_event_rendered_is_a_contract_name(tmp_path: Path) -> None:
    files = _rendered(tmp_path)
    # Every queue section; [queue-112](!) is the template they share.
    queues = re.findall(r"^\[([^\]]+)\](?!\(!\))", files["queues_112.conf"], re.M)
    prefixes = (REGENCY_QUEUE, OVERFLOW_QUEUE, PROVINCE_QUEUE)
    assert queues and all(q.startswith(prefixes) for q in queues), queues
    dialplan = files["extensions_112.conf"]
    sent = set(re.findall(r"UserEvent\((\w+),", dialplan))
    # The IVR sends IVRChoice and the message events itself (over AGI), the console and the
    # CLI AMLFix and ConsoleAction (over AMI); the dialplan sends the others.
    ivr = {UserEvent.IVR_CHOICE, UserEvent.MESSAGE_PLAYED, UserEvent.MESSAGE_SKIPPED}
    ami = {UserEvent.AML_FIX, UserEvent.CONSOLE_ACTION}
    assert sent == {e.value for e in UserEvent} - ivr - ami
    assert f"!= \"{REGENCY_QUEUE}\"" in dialplan and f"={OVERFLOW_QUEUE}$" in dialplan


def test_every_channel_variable_python_sets_is_one_the_dialplan_uses(tmp_path: Path) -> None:
    dialplan = _rendered(tmp_path)["extensions_112.conf"]
    used = set(re.findall(r"\$\{([A-Z0-9_]+)[}:]", dialplan))
    assert {v.value for v in Var} <= used, {v.value for v in Var} - used
