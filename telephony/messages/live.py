"""serve's copy of the active messages, for the IVR: refreshed from the database on a thread
of its own, so no call ever waits on the database for it.

If the database cannot be read, the copy it has stays in use until each message's own
expiry: a message never outlives its end, and an outage never starts one.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from telephony.agi.announce import Announcement
from telephony.messages.area import Area
from telephony.messages.store import active

log = structlog.get_logger(__name__)


class ActiveMessages:
    def __init__(self, engine: Engine, refresh_s: float) -> None:
        self._engine = engine
        self._refresh_s = refresh_s
        self._entries: list[tuple[Area, datetime, Announcement]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="messages", daemon=True)

    def start(self) -> None:
        self.refresh()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._refresh_s):
            self.refresh()

    def refresh(self) -> None:
        try:
            rows = active(self._engine)
        except SQLAlchemyError as exc:
            log.warning("messages.refresh_failed", error=str(exc))
            return
        entries = []
        for row in rows:
            if not Path(row.sound + ".wav").is_file():
                # Silence in a caller's ear is worse than no message.
                log.error("messages.sound_missing", message_id=row.id, sound=row.sound)
                continue
            entries.append((row.area, row.ends_at(), Announcement(row.id, row.sound,
                                                                  row.seconds)))
        if [e[2] for e in entries] != [e[2] for e in self._entries]:
            log.info("messages.active", ids=[e[2].message_id for e in entries])
        self._entries = entries  # one assignment: the IVR threads read either list whole

    def active(self) -> bool:
        now = datetime.now(UTC)
        return any(ends > now for _, ends, _ in self._entries)

    def covering(self, regency_code: str, lat: float | None,
                 lon: float | None) -> Announcement | None:
        now = datetime.now(UTC)
        for area, ends, announcement in self._entries:
            if ends > now and area.covers(regency_code, lat, lon):
                return announcement
        return None
