"""Publish, list and expire major-incident messages: the one code path the CLI and the
console's API both call.

Publishing speaks the text first (telephony.speech, the prompts' voices), refuses a message
that would play longer than ``messages.max_seconds`` (the silent caller's 12 s budget), and
only then stores the row: a message in the table always has its sound.
"""

from __future__ import annotations

import secrets
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from telephony.config import Config, resolve_path
from telephony.errors import TelephonyError
from telephony.messages.area import Area
from telephony.messages.models import MajorMessage
from telephony.speech import SpeechError, speak

TEXT_MAX = 300


class MessageError(TelephonyError):
    """A message that cannot be published or expired as asked."""


@dataclass(frozen=True)
class Draft:
    text_id: str
    text_en: str
    area: Area
    minutes: int


def clean_text(text: str, what: str) -> str:
    """One line of plain text: control characters refused, not silently dropped."""
    text = text.strip()
    if len(text) > TEXT_MAX:
        raise MessageError(f"{what} is {len(text)} characters; at most {TEXT_MAX}")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise MessageError(f"{what} holds control characters (line breaks, tabs, ...)")
    return text


def voices(config: Config) -> dict[str, object]:
    """The prompts' espeak-ng voices (ivr_prompts/prompts.toml), so messages sound alike."""
    manifest = resolve_path(config.ivr.prompts_dir) / "prompts.toml"
    loaded: dict[str, object] = tomllib.loads(manifest.read_text(encoding="utf-8"))["voices"]
    return loaded


def publish(engine: Engine, config: Config, draft: Draft, user: str,
            now: datetime | None = None) -> MajorMessage:
    text_id = clean_text(draft.text_id, "the Indonesian text")
    text_en = clean_text(draft.text_en, "the English text")
    if not text_id:
        raise MessageError("the Indonesian text is empty")
    if not 1 <= draft.minutes <= config.messages.max_minutes:
        raise MessageError(f"minutes must be 1 to {config.messages.max_minutes} "
                           "(messages.max_minutes)")
    parts = [("id", text_id)] + ([("en", text_en)] if text_en else [])
    folder = resolve_path(config.messages.sound_dir).resolve()
    stem = folder / f"message-{secrets.token_hex(8)}"
    try:
        seconds = speak(parts, voices(config), stem)
    except SpeechError as exc:
        raise MessageError(f"could not speak the message: {exc}") from exc
    if seconds > config.messages.max_seconds:
        _remove(stem)
        raise MessageError(
            f"spoken, the message lasts {seconds:.1f} s, more than messages.max_seconds "
            f"({config.messages.max_seconds:g} s): shorten the text")
    moment = now or datetime.now(UTC)
    area = draft.area
    row = MajorMessage(
        text_id=text_id, text_en=text_en, regencies=",".join(sorted(area.regencies)),
        lat=area.lat, lon=area.lon, radius_m=area.radius_m, created_by=user,
        created_at=moment, expires_at=moment + timedelta(minutes=draft.minutes),
        sound=str(stem), seconds=round(seconds, 3))
    with Session(engine, expire_on_commit=False) as session:
        session.add(row)
        session.commit()
    return row


def _remove(stem: Path) -> None:
    for suffix in (".wav", ".sln16"):
        stem.with_name(stem.name + suffix).unlink(missing_ok=True)


def active(engine: Engine, now: datetime | None = None) -> list[MajorMessage]:
    """Messages playing now, newest first."""
    moment = now or datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(
            select(MajorMessage)
            .where(MajorMessage.expires_at > moment,
                   or_(MajorMessage.expired_at.is_(None), MajorMessage.expired_at > moment))
            .order_by(MajorMessage.created_at.desc(), MajorMessage.id.desc())))


def listing(engine: Engine, since: datetime | None = None) -> list[MajorMessage]:
    """Every message (or those still active at or after ``since``), newest first."""
    query = select(MajorMessage)
    if since is not None:
        query = query.where(MajorMessage.expires_at >= since)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(query.order_by(MajorMessage.id.desc())))


def expire(engine: Engine, message_id: int, user: str,
           now: datetime | None = None) -> MajorMessage:
    moment = now or datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(MajorMessage, message_id)
        if row is None:
            raise MessageError(f"no message {message_id}")
        if row.ends_at() <= moment:
            raise MessageError(f"message {message_id} has already ended")
        row.expired_at = moment
        row.expired_by = user
        session.commit()
        return row


def as_dict(row: MajorMessage, now: datetime | None = None) -> dict[str, object]:
    moment = now or datetime.now(UTC)
    return {
        "id": row.id, "text_id": row.text_id, "text_en": row.text_en,
        "regencies": sorted(row.area.regencies),
        "circle": None if row.regencies else {"lat": row.lat, "lon": row.lon,
                                              "radius_m": row.radius_m},
        "created_by": row.created_by, "created_at": _iso(row.created_at),
        "expires_at": _iso(row.ends_at()), "active": row.ends_at() > moment,
        "seconds": row.seconds,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
