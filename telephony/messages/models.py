"""The ``major_messages`` table: what was published, for where, until when, and its sound."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from telephony.audit.models import UTCDateTime
from telephony.db import Base
from telephony.messages.area import Area, parse_regencies


class MajorMessage(Base):
    __tablename__ = "major_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    text_id: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text, default="")
    # Comma-separated regency codes; empty for a circle.
    regencies: Mapped[str] = mapped_column(String(400), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Set when someone ended it before expires_at.
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_by: Mapped[str | None] = mapped_column(String(64))
    # Absolute path without extension (.wav and .sln16 sit next to it), as STREAM FILE wants.
    sound: Mapped[str] = mapped_column(String(500))
    seconds: Mapped[float] = mapped_column(Float)

    @property
    def area(self) -> Area:
        if self.regencies:
            return Area(regencies=parse_regencies(self.regencies))
        return Area(lat=self.lat, lon=self.lon, radius_m=self.radius_m)

    def ends_at(self) -> datetime:
        return min(self.expires_at, self.expired_at) if self.expired_at else self.expires_at
