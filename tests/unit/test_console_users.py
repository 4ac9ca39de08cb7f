"""`telephony console users add|list|remove` on a real SQLite store, and argon2id at rest."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from telephony import cli
from telephony.console.accounts import ConsoleUser, authenticate
from telephony.db import make_engine


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        *args: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(["--set", f"audit.database_url=sqlite:///{tmp_path / 't.db'}", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(tmp_path, capsys, monkeypatch, "console", "users", "add", "sari",
                       "--role", "operator", "--operator", "op3578", "--password-stdin",
                       stdin="kata-sandi-panjang\n")
    assert code == 0 and "sari (operator, operator op3578)" in out
    code, _, _ = run(tmp_path, capsys, monkeypatch, "console", "users", "add", "kepala",
                     "--role", "supervisor", "--password-stdin", stdin="sandi-supervisor\n")
    assert code == 0
    code, out, _ = run(tmp_path, capsys, monkeypatch, "console", "users", "list", "--json")
    assert json.loads(out) == [
        {"name": "kepala", "role": "supervisor", "operator": None},
        {"name": "sari", "role": "operator", "operator": "op3578"},
    ]
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    with Session(engine) as session:
        stored = session.scalars(select(ConsoleUser.password_hash)).all()
    assert all(h.startswith("$argon2id$") for h in stored)
    assert authenticate(engine, "sari", "kata-sandi-panjang") is not None
    assert authenticate(engine, "sari", "wrong-password") is None
    assert authenticate(engine, "nobody", "kata-sandi-panjang") is None
    engine.dispose()
    code, _, _ = run(tmp_path, capsys, monkeypatch, "console", "users", "remove", "sari")
    assert code == 0
    code, _, err = run(tmp_path, capsys, monkeypatch, "console", "users", "remove", "sari")
    assert code == 1 and err.strip() == "telephony: no console user 'sari'"


def test_bad_accounts_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for args, stdin, says in (
        (("x y", "--role", "supervisor"), "long-enough-pw\n", "user name"),
        (("sari", "--role", "operator"), "long-enough-pw\n", "needs --operator"),
        (("sari", "--role", "operator", "--operator", "op9999"), "long-enough-pw\n",
         "no operator 'op9999'"),
        (("sari", "--role", "supervisor"), "short\n", "at least 8"),
    ):
        code, _, err = run(tmp_path, capsys, monkeypatch, "console", "users", "add", *args,
                           "--password-stdin", stdin=stdin)
        assert code == 1 and says in err and len(err.strip().splitlines()) == 1, err


def test_demo_logins_for_the_demo_operators_are_made_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(2):
        code, out, _ = run(tmp_path, capsys, monkeypatch, "console", "users", "demo")
        assert code == 0 and "op3578 / web-demo-3578   operator" in out
        assert "supervisor / web-demo-supervisor   supervisor" in out
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    assert authenticate(engine, "op3578", "web-demo-3578") is not None
    engine.dispose()
