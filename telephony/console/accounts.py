"""Web accounts of the console: apart from the operators' SIP passwords, hashed with argon2id.

A user is an operator (tied to a roster entry, sees their regency), a supervisor (sees the
province) or an agency user (sees the incidents handed to their agency, telephony.incidents).
Names follow the roster's id rules so they are safe in logs and AMI headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import DateTime, Engine, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from telephony.db import Base
from telephony.errors import TelephonyError

NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{1,63}")
MIN_PASSWORD = 8
# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile (64 MiB, t=3).
_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class AccountError(TelephonyError):
    """An account cannot be created or changed; the message says why."""


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    AGENCY = "agency"


class ConsoleUser(Base):
    __tablename__ = "console_users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    operator_id: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    operator_id: str | None


def _account(row: ConsoleUser) -> Account:
    return Account(row.name, Role(row.role), row.operator_id)


def add_user(engine: Engine, name: str, role: Role, operator_id: str | None,
             password: str) -> Account:
    if not NAME.fullmatch(name):
        raise AccountError(f"user name {name!r} must be 2-64 of a-z, 0-9, '_', '.' and '-'")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
    if role is Role.OPERATOR and not operator_id:
        raise AccountError("an operator account needs --operator ID (a roster entry)")
    with Session(engine) as session, session.begin():
        if session.get(ConsoleUser, name) is not None:
            raise AccountError(f"console user {name!r} already exists")
        row = ConsoleUser(name=name, role=role.value, operator_id=operator_id,
                          password_hash=_HASHER.hash(password), created_at=datetime.now(UTC))
        session.add(row)
        return _account(row)


def remove_user(engine: Engine, name: str) -> None:
    with Session(engine) as session, session.begin():
        row = session.get(ConsoleUser, name)
        if row is None:
            raise AccountError(f"no console user {name!r}")
        session.delete(row)


def users(engine: Engine) -> list[Account]:
    with Session(engine) as session:
        return [_account(r) for r in session.scalars(select(ConsoleUser).order_by(
            ConsoleUser.name))]


def authenticate(engine: Engine, name: str, password: str) -> Account | None:
    """The account if the password is right; None otherwise (in about the same time)."""
    with Session(engine) as session:
        row = session.get(ConsoleUser, name)
        stored = row.password_hash if row is not None else _DUMMY_HASH
        try:
            _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if _HASHER.check_needs_rehash(stored):
            row.password_hash = _HASHER.hash(password)
            session.commit()
        return _account(row)
