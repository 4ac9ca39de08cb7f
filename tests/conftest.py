"""Shared fixtures: a real Asterisk sandbox per test session, with our own dialplans.

Provisioning failures fail the run: an integration suite that skips when Asterisk is
missing would pass in CI while testing nothing. Helpers the tests call live in
tests/harness/; this file holds only fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from telephony import config as config_mod
from telephony.pbx.provision import AsteriskInstall
from telephony.pbx.sandbox import install_for
from tests.harness.sandbox import Sandbox, assert_audit_matches_cel, start_sandbox


@pytest.fixture(scope="session")
def asterisk_install() -> AsteriskInstall:
    return install_for(config_mod.load(None, env={}))


@pytest.fixture(scope="session")
def sandbox(
    asterisk_install: AsteriskInstall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    # The defaults, as in production: the SIP edge (Kamailio) in front of Asterisk, location
    # by value on; direct mode has sandboxes of its own (test_location, test_deploy).
    root = tmp_path_factory.mktemp("sandbox")
    box = start_sandbox(asterisk_install, root)
    try:
        yield box
    finally:
        box.stop()
    assert_audit_matches_cel(box)


@pytest.fixture
def no_leaks(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The session sandbox, checked after the test for channels left behind."""
    yield sandbox
    left = sandbox.wait_no_channels()
    assert left == 0, f"{left} channel(s) leaked:\n{sandbox.asterisk.cli('core show channels')}"
