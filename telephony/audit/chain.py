"""Tamper evidence for the audit trail (pure): a SHA-256 hash chain plus HMAC-signed checkpoints.

Each event's hash covers the canonical JSON of its seq, time, linkedid, uniqueid, type, payload,
source, idempotency key and the previous event's hash, so editing, removing or moving any row
breaks the chain from that row on. Someone able to rewrite the whole table could recompute the
chain; the checkpoints (seq, hash, time, HMAC) appended to a separate file pin the chain head at
intervals with a key the database never sees, which also exposes a truncated tail. Keep the
checkpoint file on other storage than the database, or ship it off the box.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from telephony.audit.events import canonical_json

GENESIS_HASH = "0" * 64


def iso_time(moment: datetime) -> str:
    """UTC with microseconds and a Z: the same text whichever database returned the value."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ChainRow:
    seq: int
    time: datetime
    linkedid: str
    uniqueid: str
    type: str
    payload: str
    source: str
    event_key: str
    prev_hash: str
    hash: str


def link_hash(
    *,
    seq: int,
    time: datetime,
    linkedid: str,
    uniqueid: str,
    type: str,
    payload: str,
    source: str,
    event_key: str,
    prev_hash: str,
) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "time": iso_time(time),
            "linkedid": linkedid,
            "uniqueid": uniqueid,
            "type": type,
            "payload": payload,
            "source": source,
            "event_key": event_key,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def row_hash(row: ChainRow) -> str:
    return link_hash(
        seq=row.seq,
        time=row.time,
        linkedid=row.linkedid,
        uniqueid=row.uniqueid,
        type=row.type,
        payload=row.payload,
        source=row.source,
        event_key=row.event_key,
        prev_hash=row.prev_hash,
    )


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    time: str
    mac: str

    def to_line(self) -> str:
        return canonical_json(
            {"seq": self.seq, "hash": self.hash, "time": self.time, "mac": self.mac}
        )


def _mac(seq: int, chain_hash: str, time: str, key: bytes) -> str:
    body = canonical_json({"seq": seq, "hash": chain_hash, "time": time})
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_checkpoint(seq: int, chain_hash: str, moment: datetime, key: bytes) -> Checkpoint:
    time = iso_time(moment)
    return Checkpoint(seq, chain_hash, time, _mac(seq, chain_hash, time, key))


def parse_checkpoint(line: str) -> Checkpoint:
    """Raise ValueError on anything that is not a well-formed checkpoint line."""
    try:
        data = json.loads(line)
        checkpoint = Checkpoint(int(data["seq"]), str(data["hash"]), str(data["time"]), data["mac"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed checkpoint line: {line!r}") from exc
    if not isinstance(checkpoint.mac, str):
        raise ValueError(f"malformed checkpoint line: {line!r}")
    return checkpoint


def checkpoint_valid(checkpoint: Checkpoint, key: bytes) -> bool:
    expected = _mac(checkpoint.seq, checkpoint.hash, checkpoint.time, key)
    return hmac.compare_digest(expected, checkpoint.mac)


class Problem(StrEnum):
    EDITED = "edited"
    DELETED = "deleted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    REWRITTEN = "rewritten"
    BAD_CHECKPOINT = "bad-checkpoint"


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    events_checked: int
    checkpoints_checked: int
    first_bad_seq: int | None = None
    problem: Problem | None = None
    detail: str = ""


def check(rows: Iterable[ChainRow], checkpoints: Sequence[Checkpoint], key: bytes) -> VerifyReport:
    """Walk rows in seq order against the chain rules and the signed checkpoints.

    The first failure wins: a seq gap is a deletion, a ``prev_hash`` that does not match the row
    before is a reordering (or insertion), a row whose content no longer hashes to its stored
    hash is an edit, a checkpoint hash that differs from the row's is a rewritten chain, and a
    checkpoint past the last row is a truncation.
    """
    previous_seq = 0
    for index, checkpoint in enumerate(checkpoints):
        if not checkpoint_valid(checkpoint, key) or checkpoint.seq <= previous_seq:
            detail = f"checkpoint #{index + 1} fails its MAC or goes backwards"
            return VerifyReport(False, 0, index, checkpoint.seq, Problem.BAD_CHECKPOINT, detail)
        previous_seq = checkpoint.seq
    pinned = {c.seq: c for c in checkpoints}
    prev_hash = GENESIS_HASH
    last_seq = 0
    count = 0
    passed = 0
    for row in rows:
        count += 1
        failure = _row_failure(row, last_seq, prev_hash)
        if failure is not None:
            bad_seq, problem, detail = failure
            return VerifyReport(False, count - 1, passed, bad_seq, problem, detail)
        pin = pinned.get(row.seq)
        if pin is not None:
            if pin.hash != row.hash:
                detail = (
                    f"checkpoint at seq {row.seq} ({pin.time}) pins another chain head: "
                    "rows up to here were rewritten and re-hashed"
                )
                return VerifyReport(False, count - 1, passed, row.seq, Problem.REWRITTEN, detail)
            passed += 1
        prev_hash = row.hash
        last_seq = row.seq
    if checkpoints and checkpoints[-1].seq > last_seq:
        detail = f"last checkpoint is at seq {checkpoints[-1].seq} but the table ends at {last_seq}"
        return VerifyReport(False, count, passed, last_seq + 1, Problem.TRUNCATED, detail)
    return VerifyReport(True, count, passed)


def _row_failure(row: ChainRow, last_seq: int, prev_hash: str) -> tuple[int, Problem, str] | None:
    if row.seq > last_seq + 1:
        return last_seq + 1, Problem.DELETED, f"seq {last_seq + 1}..{row.seq - 1} missing"
    if row.seq != last_seq + 1:
        return row.seq, Problem.REORDERED, f"seq {row.seq} after {last_seq}"
    if row.prev_hash != prev_hash:
        return row.seq, Problem.REORDERED, f"seq {row.seq} does not link to seq {last_seq}"
    if row_hash(row) != row.hash:
        return row.seq, Problem.EDITED, f"seq {row.seq} content does not match its hash"
    return None
