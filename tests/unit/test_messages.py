"""Major-incident messages: areas (pure), and publish/expire/active on a SQLite store with
the real espeak-ng and sox (scripts/test installs both)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from telephony.config import Config, load
from telephony.messages import store
from telephony.messages.area import Area, AreaError
from telephony.messages.live import ActiveMessages
from telephony.store import open_database

BROMO = (-7.9425, 112.9530)


def test_an_area_is_regencies_or_a_circle() -> None:
    regencies = Area(regencies=frozenset({"35.13", "35.14"}))
    assert regencies.covers("35.13", None, None)
    assert not regencies.covers("35.78", *BROMO)
    circle = Area(lat=BROMO[0], lon=BROMO[1], radius_m=10_000)
    assert circle.covers("", BROMO[0] + 0.05, BROMO[1])  # ~5.5 km north
    assert not circle.covers("35.13", BROMO[0] + 0.2, BROMO[1])
    assert not circle.covers("35.13", None, None)
    for bad in ({"regencies": frozenset({"3513"})}, {"lat": 1.0, "lon": 2.0},
                {"lat": 91.0, "lon": 0.0, "radius_m": 5.0},
                {"lat": 0.0, "lon": 0.0, "radius_m": 0.0},
                {"regencies": frozenset({"35.13"}), "lat": 0.0, "lon": 0.0, "radius_m": 1.0}):
        with pytest.raises(AreaError):
            Area(**bad)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load(None, env={}, overrides=[f"audit.database_url=sqlite:///{tmp_path / 't.db'}",
                                         f"messages.sound_dir={tmp_path / 'sounds'}"])


def test_publish_speaks_stores_and_expires(config: Config) -> None:
    engine = open_database(config)
    now = datetime.now(UTC)
    draft = store.Draft("Kebakaran Gunung Bromo sudah ditangani.", "The Bromo fire is handled.",
                        Area(regencies=frozenset({"35.13"})), 30)
    row = store.publish(engine, config, draft, "spv", now=now)
    assert 1.0 < row.seconds <= config.messages.max_seconds
    assert Path(row.sound + ".wav").is_file() and Path(row.sound + ".sln16").is_file()
    live = ActiveMessages(engine, 1.0)
    live.refresh()
    assert live.active()
    found = live.covering("35.13", None, None)
    assert found is not None and found.message_id == row.id
    assert live.covering("35.78", None, None) is None
    assert [m.id for m in store.active(engine, now + timedelta(minutes=29))] == [row.id]
    assert store.active(engine, now + timedelta(minutes=31)) == []
    store.expire(engine, row.id, "spv")
    live.refresh()
    assert not live.active()
    with pytest.raises(store.MessageError):
        store.expire(engine, row.id, "spv")
    engine.dispose()


def test_a_message_too_long_for_the_budget_or_with_a_line_break_is_refused(
        config: Config) -> None:
    engine = open_database(config)
    long_text = ("Kebakaran di Gunung Bromo sudah ditangani, petugas menuju lokasi. "
                 "Jangan mendekat ke kawah, ikuti arahan petugas di lapangan.")
    area = Area(regencies=frozenset({"35.13"}))
    with pytest.raises(store.MessageError, match="max_seconds"):
        store.publish(engine, config, store.Draft(long_text, "", area, 10), "spv")
    with pytest.raises(store.MessageError, match="control"):
        store.publish(engine, config, store.Draft("a\nb", "", area, 10), "spv")
    assert store.listing(engine) == []
    assert list((Path(config.messages.sound_dir)).glob("*")) == []
    engine.dispose()
