"""Does an Asterisk run our configuration? Read its files as Asterisk would, then ask it.

- `validate`: the main files that must include ours, and every file they `#include`, parsed
  with the rules of Asterisk's config.c: one bad line in anyone's file can drop the rest of
  a whole main file at the next reload, our contexts with it.
- `current`: our include files on disk are ours and are what the configuration renders now.
- `loaded`: every section of our rendered includes is live in the running Asterisk.
- `prompts`: every IVR prompt in every language, as a WAV Asterisk can play.

Every finding is a `Problem`, with a file and line whenever there is one.
"""

from __future__ import annotations

import glob
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from telephony.agi.prompts import PromptSet
from telephony.pbx.render import INCLUDE_FILES, is_ours

# Our include file for each main file that must `#include` it.
MAIN_FILES = {name.replace("_112", ""): name for name in INCLUDE_FILES}
_GLOB_MAGIC = re.compile(r"[*?\[]")
_PJSIP_LISTS = {  # section type -> (list command, the label its rows start with)
    "endpoint": ("pjsip show endpoints", "Endpoint"),
    "aor": ("pjsip show aors", "Aor"),
    "auth": ("pjsip show auths", "Auth"),
    "identify": ("pjsip show identifies", "Identify"),
}


@dataclass(frozen=True)
class Problem:
    message: str
    file: Path | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else str(self.file or "")
        return f"{where}: {self.message}" if where else self.message


class CLI(Protocol):
    """One Asterisk CLI command in, its output back (`asterisk -rx`)."""

    def cli(self, command: str) -> str: ...


@dataclass(frozen=True)
class Section:
    name: str
    line: int
    template: bool
    values: dict[str, str]


@dataclass
class _Reader:
    """Asterisk's config.c rules, enough to find what makes it skip a line or a file."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def read(self, path: Path) -> None:
        self.files.append(path.resolve())
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            self.problems.append(Problem(f"cannot read: {exc.strerror}", path))
            return
        self.parse(path, text)

    def parse(self, path: Path, text: str) -> None:
        depth = 0
        for number, raw in enumerate(text.splitlines(), 1):
            line, depth = _uncomment(raw, depth)
            line = line.strip()
            if line and not self._line(path, number, line):
                return

    def _line(self, path: Path, number: int, line: str) -> bool:
        """False when Asterisk gives up on the file (and on the rest of its main file)."""

        def problem(message: str) -> None:
            self.problems.append(Problem(message, path, number))

        if line.startswith("["):
            close = line.find("]")
            if close < 0:
                problem("parse error: no closing ']'")
                return False
            name, rest = line[1:close], line[close + 1 :].strip()
            options: list[str] = []
            if rest.startswith("("):
                if ")" not in rest:
                    problem("parse error: no closing ')' for category options")
                    return False
                options = [o.strip() for o in rest[1 : rest.index(")")].split(",")]
            known = {s.name for s in self.sections}
            for option in options:
                if option == "+" and name not in known:
                    problem(f"category addition requested, but category '{name}' does not exist")
                    return False
                if option not in ("", "!", "+") and option not in known:
                    problem(f"inheritance requested, but category '{option}' does not exist")
                    return False
            self.sections.append(Section(name, number, "!" in options, {}))
        elif line.startswith("#"):
            parts = line[1:].split(None, 1) or [""]
            directive = parts[0]
            argument = parts[1].strip().strip('"<>') if len(parts) > 1 else ""
            if directive not in ("include", "tryinclude", "exec"):
                problem(f"unknown directive '#{directive}'")
            elif not argument:
                problem(f"directive '#{directive}' needs an argument")
            elif directive != "exec":
                self._include(path, number, argument, optional=directive == "tryinclude")
        elif not self.sections:
            problem("parse error: no category context for this line")
            return False
        elif "=" not in line:
            problem("no '=' (equal sign) in this line")
        else:
            key, _, value = line.partition("=")
            self.sections[-1].values[key.strip()] = value.lstrip(">").strip()
        return True

    def _include(self, path: Path, number: int, name: str, *, optional: bool) -> None:
        target = Path(name) if name.startswith("/") else self.root / name
        if _GLOB_MAGIC.search(name):
            # Asterisk globs with GLOB_NOMAGIC: a pattern that matches nothing is no error.
            matches = [Path(p) for p in sorted(glob.glob(str(target)))]
        elif target.exists():
            matches = [target]
        else:
            if not optional:
                # Asterisk then rejects the whole main file: at boot, a required module fails.
                message = f"#include {name}: no such file; Asterisk rejects the whole file"
                self.problems.append(Problem(message, path, number))
            matches = []
        for match in matches:
            if match.resolve() not in self.files:
                self.read(match)


def _uncomment(raw: str, depth: int) -> tuple[str, int]:
    """Drop `;` comments and (nested) `;-- --;` blocks; `\\;` is a literal semicolon."""
    out, i = [], 0
    while i < len(raw):
        if raw.startswith(";--", i):
            depth, i = depth + 1, i + 3
        elif depth and raw.startswith("--;", i):
            depth, i = depth - 1, i + 3
        elif depth:
            i += 1
        elif raw.startswith("\\;", i):
            out.append(";")
            i += 2
        elif raw[i] == ";":
            break
        else:
            out.append(raw[i])
            i += 1
    return "".join(out), depth


def sections(text: str, label: Path) -> list[Section]:
    reader = _Reader(label.parent)
    reader.parse(label, text)
    return reader.sections


def validate(confdir: Path) -> list[Problem]:
    """Each main file parses, reaches every file it includes, and includes ours."""
    problems: list[Problem] = []
    for main, ours in MAIN_FILES.items():
        path = confdir / main
        if not path.exists():
            problems.append(Problem(f"missing; it must contain the line: #include {ours}", path))
            continue
        reader = _Reader(confdir)
        reader.read(path)
        problems += reader.problems
        if (confdir / ours).resolve() not in reader.files:
            problems.append(Problem(f"does not include ours; add the line: #include {ours}", path))
    return problems


def current(confdir: Path, includes: Mapping[str, str]) -> list[Problem]:
    """Our files on disk are ours, and the ones the configuration renders now."""
    problems = []
    for name, text in includes.items():
        path = confdir / name
        if not path.exists():
            problems.append(Problem("missing: run telephony deploy apply", path))
        elif not is_ours(path):
            problems.append(Problem("not written by telephony (no marker on line 1)", path))
        elif path.read_text() != text:
            problems.append(Problem("differs from the current configuration: run apply", path))
    return problems


def loaded(cli: CLI, confdir: Path, includes: Mapping[str, str]) -> list[Problem]:
    """Every section of our rendered includes is live in Asterisk."""
    outputs: dict[str, str] = {}

    def ask(command: str) -> str:
        if command not in outputs:
            outputs[command] = cli.cli(command)
        return outputs[command]

    problems = []
    for name, text in includes.items():
        on_disk = _header_lines(confdir / name)
        for section in sections(text, confdir / name):
            probe = _probe(name, section)
            if section.template or probe is None:
                continue
            command, found = probe
            if not found(ask(command)):
                what = f"[{section.name}] is not loaded in Asterisk ({command})"
                problems.append(Problem(what, confdir / name, on_disk.get(section.name)))
    return problems


def _row(name: str, label: str = "") -> Callable[[str], bool]:
    """A list row naming `name`, after `label:` when the rows have one."""
    lead = rf"{re.escape(label)}:\s+" if label else ""
    pattern = re.compile(rf"^\s*{lead}{re.escape(name)}(/|\s|$)", re.M)
    return lambda out: pattern.search(out) is not None


def _probe(include: str, section: Section) -> tuple[str, Callable[[str], bool]] | None:
    """The CLI command that lists a section of ours, and how to spot it in the output."""
    name, kind = section.name, section.values.get("type", "")
    if include == "extensions_112.conf":
        return f"dialplan show {name}", lambda out: f"Context '{name}'" in out
    if include == "queues_112.conf":
        return f"queue show {name}", lambda out: out.lstrip().startswith(f"{name} has ")
    if include == "manager_112.conf":
        return f"manager show user {name}", _row(name, "username")
    if include == "musiconhold_112.conf":
        return "moh show classes", _row(name, "Class")
    if include == "geolocation_112.conf" and kind in ("profile", "location"):
        return f"geoloc list {kind}s", _row(name)
    if include == "pjsip_112.conf" and kind in _PJSIP_LISTS:
        command, label = _PJSIP_LISTS[kind]
        return command, _row(name, label)
    return None


def _header_lines(path: Path) -> dict[str, int]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    return {s.name: s.line for s in sections(text, path)}


def prompts(prompts_dir: Path, languages: Iterable[str]) -> list[Problem]:
    """Every prompt of prompts.toml, in every language, exists as a WAV Asterisk plays."""
    manifest = prompts_dir / "prompts.toml"
    try:
        ids = list(tomllib.loads(manifest.read_text(encoding="utf-8"))["prompts"])
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        return [Problem(f"cannot read the prompt list: {exc}", manifest)]
    problems = []
    for language in languages:
        for prompt in ids:
            try:
                PromptSet(prompts_dir, [prompt], [language])
            except (FileNotFoundError, ValueError) as exc:
                problems.append(Problem(str(exc)))
    return problems


def check(
    cli: CLI, confdir: Path, includes: Mapping[str, str], prompts_dir: Path,
    languages: Iterable[str],
) -> list[Problem]:
    return [
        *validate(confdir),
        *current(confdir, includes),
        *loaded(cli, confdir, includes),
        *prompts(prompts_dir, languages),
    ]
