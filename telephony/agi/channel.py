"""One AGI conversation over a socket: line framing, the environment block, typed commands.

pyst2's AGI class does the command/response protocol, but its constructor is not used:
it installs a process-wide SIGHUP handler (ValueError outside the main thread, and
meaningless for FastAGI, where Asterisk reports a hangup with a "HANGUP" line), echoes
everything to stderr, and reads the environment without any bound. Reads go through
LineReader instead of a raw file because pyst2 treats EOF as an empty line, which makes
its multi-line 520 parser spin forever on a dropped connection.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import BinaryIO, TextIO

from asterisk.agi import AGI, AGIResultHangup, AGISIGHUPHangup

from telephony.agi.timings import CommandTimings

# res_agi reads commands into a 2 KiB buffer; replies are short except variable values.
MAX_LINE = 8192
MAX_ENV_LINES = 256
DTMF_KEYS = frozenset("0123456789*#ABCD")
# What MSet carries unchanged: its argument parser splits on commas, '=' and '|', drops quotes
# and backslashes, nests on brackets and trims blanks, so any value with one of those (or an
# empty one) is sent by itself with SET VARIABLE instead.
_MSET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,79}")
_MSET_VALUE = re.compile(r"[A-Za-z0-9_.:+/@#*-]{1,256}")
# Pairs per MSet: Asterisk 22 parses 99, older releases 24. The bytes cap keeps the command
# line inside res_agi's 2 KiB read buffer.
MSET_PAIRS = 24
MSET_BYTES = 1800


class ConnectionClosed(Exception):
    """The peer closed the socket, or the session watchdog shut it down."""


class ProtocolError(Exception):
    """The peer sent something that is not an AGI environment or reply."""


class LineReader:
    """readline() for pyst2 that bounds line length and turns EOF into ConnectionClosed."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readline(self) -> str:
        raw = self._stream.readline(MAX_LINE + 1)
        if not raw:
            raise ConnectionClosed("AGI peer closed the connection")
        if len(raw) > MAX_LINE:
            raise ProtocolError(f"AGI line longer than {MAX_LINE} bytes")
        line = raw.decode("utf-8", errors="replace")
        if line.strip() == "HANGUP":
            raise AGISIGHUPHangup("Asterisk reported that the channel hung up")
        return line


class _Discard:
    """Sink for pyst2's debug chatter, which it writes to stderr unconditionally."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def read_env(reader: LineReader) -> dict[str, str]:
    """Read the "agi_key: value" block that Asterisk sends first, up to its blank line.

    res_agi writes caller-supplied values (agi_callerid, agi_dnid, agi_rdnis) raw and ends
    every line with a bare LF. So a blank line that is a CR, or follows a line ending in CR/LF
    (both from a caller's number), does not end the block, and a line without the ``agi_``
    prefix continues the value before it. The dialplan filters those numbers before AGI too.
    """
    env: dict[str, str] = {}
    last = ""
    caller_crlf = False
    for _ in range(MAX_ENV_LINES):
        raw = reader.readline()
        line = raw.strip()
        inside = caller_crlf and bool(last)
        caller_crlf = raw.endswith("\r\n")
        if not line:
            if (raw.strip("\n") or inside) and last:
                continue  # a caller's CR or CR/LF, not Asterisk's end of the block
            return env
        key, sep, value = line.partition(":")
        if not key.startswith("agi_") and last:
            env[last] += "\n" + line
            continue
        if not sep or not key.strip():
            raise ProtocolError(f"not an AGI environment line: {line[:80]!r}")
        last = key.strip()
        env[last] = value.strip()
    raise ProtocolError(f"AGI environment longer than {MAX_ENV_LINES} lines")


class SessionAGI(AGI):  # type: ignore[misc]
    """pyst2's AGI bound to a socket's streams, recording every command's round trip."""

    def __init__(
        self,
        reader: LineReader,
        writer: TextIO,
        env: Mapping[str, str],
        timings: CommandTimings | None = None,
    ) -> None:
        # AGI.__init__ is skipped on purpose (signal handler, env read): see module doc.
        self.stdin = reader
        self.stdout = writer
        self.stderr = _Discard()
        self._got_sighup = False
        self.env = dict(env)
        self._timings = timings

    def execute(self, command: str, *args: object) -> dict[str, tuple[str, str]]:
        started = time.monotonic()
        try:
            result: dict[str, tuple[str, str]] = super().execute(command, *args)
            return result
        except ValueError as exc:
            # pyst2 parses the status code with a bare int() of whatever came back.
            raise ProtocolError(f"AGI reply without a status code: {exc}") from None
        finally:
            if self._timings is not None:
                self._timings.record(command, time.monotonic() - started)


def quote(value: str) -> str:
    """Quote one argument so that res_agi's parse_args reads back exactly this text.

    Line breaks cannot be carried by the line-based protocol and become spaces.
    """
    flat = value.replace("\r", " ").replace("\n", " ").replace("\0", "")
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Channel:
    """The AGI commands the handlers use, with typed results."""

    def __init__(self, agi: SessionAGI) -> None:
        self._agi = agi

    def get(self, expression: str) -> str:
        """Evaluate a dialplan expression such as "${CHANNEL(linkedid)}" (GET FULL VARIABLE)."""
        try:
            code, value = self._agi.execute("GET FULL VARIABLE", quote(expression))["result"]
        except AGIResultHangup:
            # pyst2 reads a value of literally "hangup" as a hangup; it is only a value here.
            return "hangup"
        return str(value) if code == "1" else ""

    def set(self, name: str, value: str) -> None:
        self._agi.execute("SET VARIABLE", quote(name), quote(value))

    def set_all(self, variables: Iterable[tuple[str, str]]) -> None:
        """Set the variables in order, with as few round trips as MSet allows: one
        EXEC MSet per run of plain values, a SET VARIABLE for any other value."""
        batch: list[str] = []
        size = 0
        for name, value in variables:
            if not (_MSET_NAME.fullmatch(name) and _MSET_VALUE.fullmatch(value)):
                self._mset(batch)
                batch, size = [], 0
                self.set(name, value)
                continue
            pair = f"{name}={value}"
            if len(batch) == MSET_PAIRS or size + len(pair) > MSET_BYTES:
                self._mset(batch)
                batch, size = [], 0
            batch.append(pair)
            size += len(pair) + 1
        self._mset(batch)

    def _mset(self, pairs: list[str]) -> None:
        if len(pairs) == 1:
            name, _, value = pairs[0].partition("=")
            self.set(name, value)
        elif pairs:
            self.exec("MSet", ",".join(pairs))

    def play(self, path: str, escape_digits: str = "") -> str:
        """Play a sound file (path without extension); return the key that cut it short."""
        result = self._agi.execute("STREAM FILE", quote(path), quote(escape_digits), "0")
        return _key(result)

    def wait_for_digit(self, seconds: float) -> str:
        """Wait for one DTMF key; "" on timeout."""
        # 0 or less would mean "wait forever" to Asterisk.
        milliseconds = max(1, round(seconds * 1000))
        return _key(self._agi.execute("WAIT FOR DIGIT", str(milliseconds)))

    def exec(self, application: str, data: str) -> str:
        """Run a dialplan application; returns its result code ("-2": no such application)."""
        return str(self._agi.execute("EXEC", application, quote(data))["result"][0])


def _key(result: Mapping[str, tuple[str, str]]) -> str:
    value = result["result"][0]
    try:
        code = int(value)
    except ValueError:
        raise ProtocolError(f"AGI result is not a number: {value!r}") from None
    if code == 0:
        return ""
    key = chr(code) if 0 < code < 128 else ""
    if key not in DTMF_KEYS:
        raise ProtocolError(f"AGI result is not a DTMF key: {code}")
    return key
