from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from telephony.config import load
from telephony.pbx.check import (
    MAIN_FILES,
    Problem,
    current,
    loaded,
    prompts,
    sections,
    validate,
)
from telephony.pbx.deploy import includes

PROMPTS = Path(__file__).resolve().parents[2] / "ivr_prompts"


def etc_with(tmp_path: Path, **files: str) -> Path:
    """A config dir whose main files include ours (present and empty), plus `files`."""
    for main, ours in MAIN_FILES.items():
        (tmp_path / main).write_text(f"[general]\n#include {ours}\n")
        (tmp_path / ours).write_text("")
    for name, text in files.items():
        (tmp_path / name.replace("__", ".")).write_text(text)
    return tmp_path


def test_a_clean_config_dir_has_no_problems(tmp_path: Path) -> None:
    assert validate(etc_with(tmp_path)) == []


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[general]\nfoo = 1\n[broken\n", 3, "parse error: no closing ']'"),
        ("[ok](!\n", 1, "parse error: no closing ')' for category options"),
        ("[a](missing-template)\n", 1,
         "inheritance requested, but category 'missing-template' does not exist"),
        ("[a]\nthis line has no equals\n", 2, "no '=' (equal sign) in this line"),
        ("[a]\n#includ x.conf\n", 2, "unknown directive '#includ'"),
        ("[a]\n#include\n", 2, "directive '#include' needs an argument"),
        ("[a]\n#include nowhere.conf\n", 2,
         "#include nowhere.conf: no such file; Asterisk rejects the whole file"),
    ],
)
def test_what_asterisk_rejects_is_reported_with_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    etc = etc_with(tmp_path, their__conf=text)
    with (etc / "extensions.conf").open("a") as fh:
        fh.write("#include their.conf\n")
    assert validate(etc) == [Problem(message, etc / "their.conf", line)]


def test_a_setting_before_any_section_ends_the_file_for_asterisk(tmp_path: Path) -> None:
    etc = etc_with(tmp_path)
    (etc / "queues.conf").write_text("strategy = ringall\n#include queues_112.conf\n")
    assert validate(etc) == [
        Problem("parse error: no category context for this line", etc / "queues.conf", 1),
        Problem("does not include ours; add the line: #include queues_112.conf",
                etc / "queues.conf"),
    ]


def test_comments_templates_globs_and_tryinclude_are_fine(tmp_path: Path) -> None:
    etc = etc_with(
        tmp_path,
        their__conf=(
            "; a comment\n"
            "[tpl](!) ; a template\n"
            "x = 1\n"
            ";-- a block\n"
            "not a setting ;-- nested --; still a comment\n"
            "--;\n"
            "[user](tpl)\n"
            "password = a\\;b\n"
            "exten => 1,1,NoOp(x)\n"
            "[user](+)\n"
            "#tryinclude optional.conf\n"
            '#include "extra_*.conf"\n'
            "#include <nothing_*.conf>\n"
        ),
        extra_one__conf="[extra]\nkey = value\n",
    )
    with (etc / "pjsip.conf").open("a") as fh:
        fh.write("#include their.conf\n")
    assert validate(etc) == []
    parsed = sections((etc / "their.conf").read_text(), etc / "their.conf")
    assert [(s.name, s.line, s.template) for s in parsed] == [
        ("tpl", 2, True), ("user", 7, False), ("user", 10, False), ("extra", 1, False)
    ]
    assert parsed[1].values == {"password": "a;b", "exten": "1,1,NoOp(x)"}


def test_a_main_file_must_include_ours_directly_or_through_another_file(
    tmp_path: Path,
) -> None:
    etc = etc_with(tmp_path, local__conf="#include extensions_112.conf\n")
    (etc / "extensions.conf").write_text("[general]\n")
    (etc / "queues.conf").write_text("[general]\n")
    (etc / "manager.conf").unlink()
    assert validate(etc) == [
        Problem("does not include ours; add the line: #include extensions_112.conf",
                etc / "extensions.conf"),
        Problem("does not include ours; add the line: #include queues_112.conf",
                etc / "queues.conf"),
        Problem("missing; it must contain the line: #include manager_112.conf",
                etc / "manager.conf"),
    ]
    (etc / "extensions.conf").write_text("[general]\n#include local.conf\n")
    assert len(validate(etc)) == 2


def test_our_files_on_disk_must_be_ours_and_current(tmp_path: Path) -> None:
    config = load(None, env={}, overrides=["ami.secret=s"])
    rendered = includes(config)
    for name, text in rendered.items():
        (tmp_path / name).write_text(text)
    assert current(tmp_path, rendered) == []
    (tmp_path / "queues_112.conf").write_text(rendered["queues_112.conf"] + "; edited\n")
    (tmp_path / "manager_112.conf").write_text("[someone-else]\n")
    (tmp_path / "pjsip_112.conf").unlink()
    assert current(tmp_path, rendered) == [
        Problem("missing: run telephony deploy apply", tmp_path / "pjsip_112.conf"),
        Problem("differs from the current configuration: run apply",
                tmp_path / "queues_112.conf"),
        Problem("not written by telephony (no marker on line 1)",
                tmp_path / "manager_112.conf"),
    ]


class RecordedCLI:
    """Asterisk's answers as recorded from a 22.x sandbox, minus what `missing` names."""

    def __init__(self, sections: dict[str, list[str]], missing: set[str]) -> None:
        self._sections = sections
        self._missing = missing
        self.asked: list[str] = []

    def cli(self, command: str) -> str:
        self.asked.append(command)
        words = command.split()
        name = words[-1]
        if words[:2] == ["dialplan", "show"]:
            if name in self._missing:
                return f"There is no existence of '{name}' context\n"
            return f"[ Context '{name}' created by 'pbx_config' ]\n"
        if words[:2] == ["queue", "show"]:
            if name in self._missing:
                return f"No such queue: {name}.\n"
            return f"{name} has 0 calls (max unlimited) in 'rrmemory' strategy\n"
        if words[:3] == ["manager", "show", "user"]:
            if name in self._missing:
                return f"There is no manager called {name}\n"
            return f"\n          username: {name}\n            secret: <Set>\n"
        rows = {
            "endpoints": " Endpoint:  {}                 Unavailable   0 of inf\n",
            "aors": "      Aor:  {}                                     1\n",
            "auths": "     Auth:  {}/someone\n",
            "identifies": " Identify:  {}/trunk-mno\n",
            "classes": "Class: {}\n\tMode: playlist\n",
            "profiles": "{}                                  prefer_incoming\n",
        }
        row = rows[name]
        return "".join(row.format(s) for s in self._sections.get(name, [])
                       if s not in self._missing)


def test_every_section_of_ours_must_be_loaded_and_is_located_in_our_file(
    tmp_path: Path,
) -> None:
    config = load(None, env={}, overrides=["ami.secret=s"])
    rendered = includes(config)
    for name, text in rendered.items():
        (tmp_path / name).write_text(text)
    ours = {name: sections(text, tmp_path / name) for name, text in rendered.items()}
    kinds: dict[str, list[str]] = {}
    for section in ours["pjsip_112.conf"]:
        plural = {"identify": "identifies"}.get(section.values.get("type", ""), "")
        plural = plural or f"{section.values.get('type')}s"
        kinds.setdefault(plural, []).append(section.name)
    kinds["classes"] = [s.name for s in ours["musiconhold_112.conf"]]
    kinds["profiles"] = [s.name for s in ours["geolocation_112.conf"]]
    full = RecordedCLI(kinds, set())
    assert loaded(full, tmp_path, rendered) == []
    assert "dialplan show emergency-112" in full.asked
    assert f"queue show {config.ivr.default_queue}" in full.asked
    assert "queue show queue-112" not in full.asked  # a template, not a queue
    missing = {"emergency-112", "trunk-mno", config.ivr.default_queue, "geoloc-112-in"}
    problems = loaded(RecordedCLI(kinds, missing), tmp_path, rendered)
    where = {(p.file.name if p.file else None, p.message.split("]")[0][1:]) for p in problems}
    assert where == {
        ("extensions_112.conf", "emergency-112"),
        ("pjsip_112.conf", "trunk-mno"),
        ("queues_112.conf", config.ivr.default_queue),
        ("geolocation_112.conf", "geoloc-112-in"),
    }
    for problem in problems:
        assert problem.file is not None and problem.line is not None
        header = problem.file.read_text().splitlines()[problem.line - 1]
        assert header.startswith(f"[{problem.message.split(']')[0][1:]}]")


def test_every_prompt_in_every_language_must_be_a_playable_wav(tmp_path: Path) -> None:
    prompt_dir = tmp_path / "prompts"
    shutil.copytree(PROMPTS, prompt_dir)
    assert prompts(prompt_dir, ("id", "en")) == []
    (prompt_dir / "en" / "welcome.wav").unlink()
    (prompt_dir / "id" / "menu.wav").write_bytes(b"RIFF not really")
    found = [str(p) for p in prompts(prompt_dir, ("id", "en"))]
    assert len(found) == 2
    assert str(prompt_dir / "id" / "menu.wav") in found[0]
    assert str(prompt_dir / "en" / "welcome.wav") in found[1]
    (prompt_dir / "prompts.toml").unlink()
    assert "cannot read the prompt list" in str(prompts(prompt_dir, ("id",))[0])
