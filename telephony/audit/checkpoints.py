"""The checkpoint file: one signed ``{seq, hash, time, mac}`` JSON line per checkpoint."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from telephony.audit.chain import Checkpoint, parse_checkpoint, sign_checkpoint
from telephony.audit.files import append_lines, cut_torn_tail
from telephony.config import Config, resolve_path
from telephony.secretfile import read_or_create


def checkpoint_key(config: Config) -> bytes:
    """The checkpoints' HMAC key: configured, else generated once into its key file."""
    if config.audit.checkpoint_key:
        return config.audit.checkpoint_key.encode()
    return read_or_create(resolve_path(config.audit.checkpoint_key_file)).encode()


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """All complete checkpoint lines; a missing file has none. ValueError on a malformed line."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    # A line without its newline is a write the crash interrupted, not a checkpoint.
    complete = text[: text.rfind("\n") + 1]
    return [parse_checkpoint(line) for line in complete.splitlines() if line.strip()]


class CheckpointLog:
    def __init__(self, path: Path, key: bytes) -> None:
        if not key:
            raise ValueError("checkpoint key must not be empty")
        self.path = path
        self._key = key
        path.parent.mkdir(parents=True, exist_ok=True)
        cut_torn_tail(path)
        existing = read_checkpoints(path)
        self.last_seq = existing[-1].seq if existing else 0

    def append(self, seq: int, chain_hash: str, moment: datetime) -> Checkpoint:
        checkpoint = sign_checkpoint(seq, chain_hash, moment, self._key)
        append_lines(self.path, [checkpoint.to_line()])
        self.last_seq = seq
        return checkpoint
