"""A fake Asterisk for FastAGI tests and benchmarks: connects like res_agi and answers.

    transcript = FakeAsterisk(server.address, keys={"id/welcome": "2"}).run()
    transcript.variables["EMERGENCY_TYPE"]  # "medical"

It answers GET FULL VARIABLE from `variables`, STREAM FILE with the key in `keys` for that
"lang/prompt" (each key is used once), WAIT FOR DIGIT from `waits` in order, and records
SET VARIABLE, EXEC MSet and EXEC UserEvent. A hook sees every command line first and can return a
raw reply (garbage, "200 result=-1\\n", "HANGUP\\n..."), CLOSE to hang up the socket, or
None for the default answer; it may also sleep to stall the server.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from telephony.agi.server import FastAGIServer, Handler

# One ${...} reference (no nesting: the IVR's expressions have none).
_EXPRESSION = re.compile(r"\$\{[^{}]*\}")


class Close:
    """Type of CLOSE, the hook reply that makes the fake hang up the socket."""


CLOSE = Close()
Hook = Callable[[str], "str | Close | None"]


@dataclass
class Transcript:
    """What the server did to the fake channel."""

    commands: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    set_order: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    # True when the server ended the session by closing its side of the socket.
    server_closed: bool = False
    seconds: float = 0.0


def mset_pairs(data: str) -> list[tuple[str, str]]:
    """MSet's argument as pbx_builtin_setvar_multiple reads plain values: pairs split on
    commas, each name from its value at the first '='."""
    return [(name, value) for name, _, value in (p.partition("=") for p in data.split(","))]


def split_args(line: str) -> list[str]:
    """Split a command line the way res_agi's parse_args does (quotes, backslash escapes)."""
    args: list[str] = []
    current: list[str] = []
    quoted = escaped = in_word = False
    for ch in line:
        if escaped:
            current.append(ch)
            escaped, in_word = False, True
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted, in_word = not quoted, True
        elif ch in " \t" and not quoted:
            if in_word:
                args.append("".join(current))
                current, in_word = [], False
        else:
            current.append(ch)
            in_word = True
    if in_word:
        args.append("".join(current))
    return args


class FakeAsterisk:
    """One call's side of a FastAGI session."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        script: str = "ivr",
        args: Sequence[str] = (),
        variables: Mapping[str, str] | None = None,
        keys: Mapping[str, str] | None = None,
        waits: Sequence[str] = (),
        hook: Hook | None = None,
        timeout: float = 5.0,
        uniqueid: str = "1700000000.2",
        linkedid: str = "1700000000.1",
    ) -> None:
        self._address = address
        self._script = script
        self._args = list(args)
        self._variables = {"${CHANNEL(linkedid)}": linkedid, **(variables or {})}
        self._keys = dict(keys or {})
        self._waits = list(waits)
        self._hook = hook
        self._timeout = timeout
        self._uniqueid = uniqueid

    def env_block(self) -> bytes:
        lines = [
            "agi_network: yes",
            f"agi_network_script: {self._script}",
            f"agi_request: agi://{self._address[0]}:{self._address[1]}/{self._script}",
            "agi_channel: PJSIP/caller-00000001",
            "agi_language: id",
            "agi_type: PJSIP",
            f"agi_uniqueid: {self._uniqueid}",
            "agi_version: 22.0.0",
            "agi_callerid: 081234567890",
            "agi_calleridname: unknown",
            "agi_dnid: 112",
            "agi_context: emergency",
            "agi_extension: 112",
            "agi_priority: 3",
            "agi_enhanced: 0.0",
            "agi_accountcode: ",
            "agi_threadid: 140000000000000",
            *(f"agi_arg_{n}: {arg}" for n, arg in enumerate(self._args, start=1)),
        ]
        return ("\n".join(lines) + "\n\n").encode()

    def run(self) -> Transcript:
        transcript = Transcript()
        started = time.monotonic()
        with socket.create_connection(self._address, timeout=self._timeout) as sock:
            sock.sendall(self.env_block())
            rfile = sock.makefile("rb")
            while True:
                try:
                    raw = rfile.readline()
                except TimeoutError:
                    break
                except OSError:
                    # A reset: the server closed while a reply of ours was still unread.
                    raw = b""
                if not raw:
                    transcript.server_closed = True
                    break
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                transcript.commands.append(line)
                reply = self._hook(line) if self._hook else None
                if isinstance(reply, Close):
                    break
                try:
                    sock.sendall((reply or self._answer(line, transcript)).encode())
                except OSError:
                    break
        transcript.seconds = time.monotonic() - started
        return transcript

    def _answer(self, line: str, transcript: Transcript) -> str:
        args = split_args(line)
        words = [arg.upper() for arg in args]
        if words[:3] == ["GET", "FULL", "VARIABLE"] and len(args) > 3:
            # Like Asterisk, every ${...} of the expression is substituted, the rest kept.
            value = _EXPRESSION.sub(lambda m: self._variables.get(m.group(), ""), args[3])
            return f"200 result=1 ({value})\n"
        if words[:2] == ["SET", "VARIABLE"] and len(args) > 3:
            transcript.variables[args[2]] = args[3]
            transcript.set_order.append(args[2])
            return "200 result=1\n"
        if words[:2] == ["STREAM", "FILE"] and len(args) > 2:
            played = "/".join(args[2].split("/")[-2:])
            transcript.played.append(played)
            key = self._keys.pop(played, "")
            return f"200 result={ord(key) if key else 0} endpos=8000\n"
        if words[:3] == ["WAIT", "FOR", "DIGIT"]:
            key = self._waits.pop(0) if self._waits else ""
            return f"200 result={ord(key) if key else 0}\n"
        if words[:1] == ["EXEC"] and len(args) > 2:
            if args[1].lower() == "userevent":
                transcript.events.append(args[2])
            if args[1].lower() == "mset":
                for name, value in mset_pairs(args[2]):
                    transcript.variables[name] = value
                    transcript.set_order.append(name)
            return "200 result=0\n"
        return "510 Invalid or unknown command\n"


@contextlib.contextmanager
def serving(scripts: Mapping[str, Handler], **options: Any) -> Iterator[FastAGIServer]:
    """A started FastAGIServer on a free loopback port, stopped on exit."""
    server = FastAGIServer("127.0.0.1", 0, scripts, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop(timeout=2.0)


@contextlib.contextmanager
def thread_errors() -> Iterator[list[str]]:
    """Collect exceptions that escape any thread (they would otherwise only be printed)."""
    caught: list[str] = []
    previous = threading.excepthook

    def record(args: threading.ExceptHookArgs) -> None:
        caught.append(f"{args.thread.name if args.thread else '?'}: {args.exc_value!r}")

    threading.excepthook = record
    try:
        yield caught
    finally:
        threading.excepthook = previous
