"""Seal each call recording into the audit chain, and expire recordings past retention.

The dialplan records every answered queue call with MixMonitor on the operator's channel
and announces the file with `UserEvent(RecordingStarted, File: ...)`. When that channel
hangs up (or MixMonitor is stopped), this component hashes the finished file and appends a
`RecordingSealed` event (path, duration, SHA-256) to the same queue the AMI events take, so
it is chained like them: a recording altered later no longer matches its sealed digest.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from telephony.ami import Frame
from telephony.contract import UserEvent

log = structlog.get_logger(__name__)

# MixMonitor closes its file on its own thread, just after the channel's MixMonitorStop.
SETTLE_S = 0.2
SETTLE_TRIES = 25
RETENTION_SWEEP_S = 3600.0
WAV_HEADER_BYTES = 44


@dataclass(frozen=True)
class Sealed:
    path: Path
    seconds: float
    sha256: str
    size: int


def seal(path: Path) -> Sealed:
    """Digest and duration of a finished WAV recording."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    with wave.open(str(path), "rb") as wav:
        seconds = wav.getnframes() / float(wav.getframerate())
    return Sealed(path, round(seconds, 3), digest.hexdigest(), path.stat().st_size)


def _closed(path: Path) -> bool:
    """Asterisk writes the WAV header's lengths when it closes the file: then they add up."""
    try:
        with wave.open(str(path), "rb") as wav:
            frame_bytes = wav.getnframes() * wav.getsampwidth() * wav.getnchannels()
    except (OSError, wave.Error, EOFError):
        return False
    return frame_bytes > 0 and frame_bytes + WAV_HEADER_BYTES == path.stat().st_size


def _settled(path: Path) -> bool:
    """Wait until MixMonitor has closed the file, or it stops changing."""
    last = -1
    for _ in range(SETTLE_TRIES):
        if _closed(path):
            return True
        size = path.stat().st_size if path.exists() else -1
        last = size
        time.sleep(SETTLE_S)
    return path.exists() and path.stat().st_size == last


class Sink(Protocol):
    """Where sealed recordings go: the writer's queue (an Intake, or a queue.Queue in tests)."""

    def put(self, item: Frame) -> None: ...


class RecordingSealer:
    def __init__(self, events: Sink, directory: Path, retention_days: int) -> None:
        self._events = events
        self._directory = directory
        self._retention_s = retention_days * 86400.0
        self._files: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stopped: queue.Queue[Frame | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="recording-sealer", daemon=True)

    def observe(self, frame: Frame) -> None:
        """Called on the AMI reader for every event: only remembers and hands over."""
        if frame.event == "UserEvent" and frame.get("UserEvent") == UserEvent.RECORDING_STARTED:
            with self._lock:
                self._files[frame.get("Uniqueid") or ""] = frame.get("File") or ""
        elif frame.event in ("MixMonitorStop", "Hangup"):
            # A recording ends with its channel; Asterisk only sends MixMonitorStop when
            # someone stops it early.
            with self._lock:
                known = (frame.get("Uniqueid") or "") in self._files
            if known:
                self._stopped.put(frame)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.put(None)
        self._thread.join(SETTLE_S * SETTLE_TRIES + 5)

    def _run(self) -> None:
        next_sweep = time.monotonic()
        while True:
            if self._retention_s and time.monotonic() >= next_sweep:
                self._expire()
                next_sweep = time.monotonic() + RETENTION_SWEEP_S
            try:
                stopped = self._stopped.get(timeout=RETENTION_SWEEP_S)
            except queue.Empty:
                continue
            if stopped is None:
                return
            self._seal(stopped)

    def _seal(self, stopped: Frame) -> None:
        uniqueid = stopped.get("Uniqueid") or ""
        with self._lock:
            name = self._files.pop(uniqueid, "")
        fields = {
            "Event": "RecordingSealed",
            "Uniqueid": uniqueid,
            "Linkedid": stopped.get("Linkedid") or "",
            "Channel": stopped.get("Channel") or "",
            "File": name,
        }
        path = Path(name)
        try:
            if not name or not _settled(path):
                raise FileNotFoundError(name or "no RecordingStarted for this channel")
            sealed = seal(path)
            fields.update(Duration=f"{sealed.seconds}", SHA256=sealed.sha256, Size=str(sealed.size))
        except (OSError, wave.Error, EOFError) as exc:
            fields.update(Error=str(exc))
            log.error("recording.seal_failed", file=name, error=str(exc),
                      linkedid=fields["Linkedid"])
        self._events.put(Frame.of(fields, received_ns=time.time_ns()))

    def _expire(self) -> None:
        cutoff = time.time() - self._retention_s
        for path in sorted(self._directory.rglob("*.wav")):
            try:
                if path.stat().st_mtime >= cutoff:
                    continue
                path.unlink()
            except OSError as exc:
                log.error("recording.expire_failed", file=str(path), error=str(exc))
                continue
            self._events.put(Frame.of({"Event": "RecordingExpired", "File": str(path)},
                                      received_ns=time.time_ns()))
            log.info("recording.expired", file=str(path))
