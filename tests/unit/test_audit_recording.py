from __future__ import annotations

import hashlib
import os
import queue
import time
import wave
from pathlib import Path

from telephony.ami import Frame
from telephony.audit.recording import RecordingSealer, seal


def write_wav(path: Path, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x01\x00" * int(8000 * seconds))
    return path


def test_seal_gives_duration_and_digest(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", 1.5)
    sealed = seal(path)
    assert sealed.seconds == 1.5
    assert sealed.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_hangup_of_a_recorded_channel_appends_a_sealed_event(tmp_path: Path) -> None:
    events: queue.Queue[Frame] = queue.Queue()
    sealer = RecordingSealer(events, tmp_path, retention_days=0)
    path = write_wav(tmp_path / "day" / "call.wav", 2.0)
    sealer.start()
    try:
        sealer.observe(Frame.of({"Event": "UserEvent", "UserEvent": "RecordingStarted",
                                 "Uniqueid": "1.2", "Linkedid": "1.1", "File": str(path)}))
        sealer.observe(Frame.of({"Event": "Hangup", "Uniqueid": "9.9", "Linkedid": "9.9"}))
        sealer.observe(Frame.of({"Event": "Hangup", "Uniqueid": "1.2", "Linkedid": "1.1"}))
        sealed = events.get(timeout=10)
    finally:
        sealer.stop()
    assert sealed.event == "RecordingSealed"
    assert (sealed.get("Linkedid"), sealed.get("File"), sealed.get("Duration")) == (
        "1.1", str(path), "2.0")
    assert sealed.get("SHA256") == hashlib.sha256(path.read_bytes()).hexdigest()
    assert events.empty(), "a hangup of an unrecorded channel sealed something"


def test_a_missing_recording_is_reported_not_lost(tmp_path: Path) -> None:
    events: queue.Queue[Frame] = queue.Queue()
    sealer = RecordingSealer(events, tmp_path, retention_days=0)
    sealer.start()
    try:
        sealer.observe(Frame.of({"Event": "UserEvent", "UserEvent": "RecordingStarted",
                                 "Uniqueid": "2.2", "File": str(tmp_path / "gone.wav")}))
        sealer.observe(Frame.of({"Event": "MixMonitorStop", "Uniqueid": "2.2"}))
        sealed = events.get(timeout=15)
    finally:
        sealer.stop()
    assert sealed.event == "RecordingSealed" and "gone.wav" in (sealed.get("Error") or "")


def test_retention_deletes_old_recordings_and_audits_it(tmp_path: Path) -> None:
    old = write_wav(tmp_path / "old" / "a.wav", 0.1)
    fresh = write_wav(tmp_path / "new" / "b.wav", 0.1)
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    events: queue.Queue[Frame] = queue.Queue()
    sealer = RecordingSealer(events, tmp_path, retention_days=30)
    sealer.start()
    try:
        expired = events.get(timeout=10)
    finally:
        sealer.stop()
    assert (expired.event, expired.get("File")) == ("RecordingExpired", str(old))
    assert not old.exists() and fresh.exists()
