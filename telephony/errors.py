"""One base for the errors a person can act on, and the exit codes they mean.

Every such error derives from TelephonyError and carries its exit code; `cli.main` catches
it once and prints it as one line, never a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the command could not do its job: Asterisk, AMI, the database, a deploy
    CONFIG = 2  # a configuration file, value or argument is wrong (argparse's usage errors too)
    NOT_RUNNING = 3  # `asterisk status`: the sandbox Asterisk is not running
    NOT_APPLIED = 4  # saved, but not applied to Asterisk yet; `telephony serve` will apply it


class TelephonyError(Exception):
    """An error the command reports in one line and exits with `exit_code`."""

    exit_code = ExitCode.FAILED


class ConfigurationError(TelephonyError):
    """A configuration file or value is wrong: exit 2, which a restart cannot fix."""

    exit_code = ExitCode.CONFIG
