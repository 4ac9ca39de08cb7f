"""Frames whose channel identity is Asterisk's own, or quarantined (pure).

Asterisk 22 escapes caller-ID *names* in AMI events but writes ``CallerIDNum``,
``ConnectedLineNum`` and ``Exten`` raw (manager_channels.c, see docs/security-upstream.md).
A SIP user part with percent-encoded CR/LF therefore writes lines, even blank lines, into the
middle of Asterisk's frame. Seen on the wire (tests/unit/captures/), a From user part of
``0812%0D%0A%0D%0AEvent%3A%20UserEvent%0D%0A...Linkedid%3A%20fake-1%0D%0A`` turns one
Newchannel into three frames::

    Event: Newchannel ... CallerIDNum: 0812            <- Asterisk's head, cut, no identity
    Event: UserEvent / UserEvent: Forged / Linkedid: fake-1    <- the caller's text
    CallerIDName: ... Uniqueid: <real> / Linkedid: <real>     <- Asterisk's tail, no Event

In a channel snapshot the raw field is always followed by the same fields of Asterisk's
(CallerIDNum by CallerIDName, ConnectedLineNum, ...; Exten by Priority, Uniqueid, Linkedid;
with the snapshot's prefix), and a frame of Asterisk's never ends with a raw field. So a frame
that ends with one is a head. Before the next head, its text and tail run to the last of: a
part that starts no frame (no ``Event``/``Response`` first), the first part holding those
following fields, a part with a repeated id (injected ids then Asterisk's). Everything between
the raw field and the *last* following successor is the caller's text: it is folded back into
the raw field's value and the frame gets ``TelephonyInjected: <field>``, which flags the call
in the audit. A split frame is decided within one read (Asterisk writes a frame in one go); a
head still missing its successor waits for the next read, at most ``MAX_PARTS`` parts, and is
quarantined with its parts at :meth:`IdentityGuard.flush` (idle, end of stream) or beyond.

After folding, a repeated identity field resolves to its last value (the snapshot's ids come
after the caller-ID fields). A part with neither ``Event`` nor ``Response`` first, or one with
two ``Event`` fields, is quarantined: it never reaches the audit chain, and every quarantine
is counted. Whether an event has the channel identity the audit needs is
:func:`identity_problem`'s question, asked by the audit writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from telephony.ami.frames import Frame

# Raw (unescaped) snapshot fields a caller controls, and the fields Asterisk writes next: the
# whole run must match, so an event's own later field of the same name (a UserEvent's
# ``Priority``) is not taken for the snapshot's.
SUCCESSOR = {"CallerIDNum": ("CallerIDName", "ConnectedLineNum"),
             "ConnectedLineNum": ("ConnectedLineName", "Language"),
             "Exten": ("Priority", "Uniqueid", "Linkedid")}  # fmt: skip
# The snapshot prefixes of manager_channels.c / manager_bridges.c users (DialBegin's Dest*,
# transfers' Transferer*, ...); "" is the event's own channel.
PREFIXES = ("", "Dest", "Transferer", "Transferee", "OrigTransferer", "SecondTransferer",
            "TransferTarget")  # fmt: skip
INJECTED_FIELD = "TelephonyInjected"
MAX_PARTS = 8


@dataclass(frozen=True)
class Quarantined:
    """Parts of the AMI stream kept out of the audit chain, and why."""

    parts: tuple[Frame, ...]
    reason: str
    linkedid: str = ""
    """The call the parts claim (their last Linkedid), for the quarantine record only."""

    @property
    def received_ns(self) -> int:
        return self.parts[0].received_ns if self.parts else 0


Verdict = Frame | Quarantined


def _raw_field(key: str) -> tuple[str, ...] | None:
    """The fields after ``key`` when it is a raw caller field under a known prefix."""
    for prefix in PREFIXES:
        base = key[len(prefix):] if key.startswith(prefix) else None
        if base in SUCCESSOR:
            return tuple(prefix + name for name in SUCCESSOR[base])
    return None


def _runs(fields: Sequence[tuple[str, str]], run: tuple[str, ...], start: int) -> list[int]:
    """Indexes from ``start`` on where the keys of ``run`` follow one another."""
    return [
        j for j in range(start, len(fields) - len(run) + 1)
        if all(fields[j + n][0] == name for n, name in enumerate(run))
    ]  # fmt: skip


def _starts_frame(frame: Frame) -> bool:
    return bool(frame.fields) and frame.fields[0][0].lower() in ("event", "response")


def _is_head(frame: Frame) -> bool:
    return _starts_frame(frame) and _raw_field(frame.fields[-1][0]) is not None


def _repeats_id(frame: Frame) -> bool:
    return any(len(frame.get_all(prefix + name)) > 1
               for prefix in PREFIXES for name in ("Uniqueid", "Linkedid"))  # fmt: skip


def _text(fields: Iterable[tuple[str, str]]) -> str:
    return "\r\n".join(f"{key}: {value}" for key, value in fields)


def _last(frame: Frame, key: str) -> str:
    values = frame.get_all(key)
    return values[-1] if values else ""


def claimed_linkedid(parts: Sequence[Frame]) -> str:
    for part in reversed(parts):
        for prefix in PREFIXES:
            value = _last(part, prefix + "Linkedid")
            if value:
                return value
    return ""


def fold(fields: Sequence[tuple[str, str]], breaks: frozenset[int] = frozenset()) -> tuple[
    list[tuple[str, str]], list[str]
]:
    """Fold the caller's text after each raw field back into it; returns fields and raw keys.

    ``breaks`` are indexes where a blank line (a frame boundary) came before the field.
    """
    out: list[tuple[str, str]] = []
    injected: list[str] = []
    i = 0
    while i < len(fields):
        key, value = fields[i]
        successor = _raw_field(key)
        end = None
        if successor is not None:
            later = _runs(fields, successor, i + 1)
            end = later[-1] if later else None
        if end is None or (end == i + 1 and i + 1 not in breaks):
            out.append((key, value))
            i += 1
            continue
        text = value
        for j in range(i + 1, end):
            text += ("\r\n\r\n" if j in breaks else "\r\n") + _text([fields[j]])
        if end in breaks:
            text += "\r\n"
        out.append((key, text))
        injected.append(key)
        i = end
    return out, injected


def _check(parts: tuple[Frame, ...]) -> Verdict:
    """One frame of Asterisk's from its parts, or the parts quarantined."""
    fields: list[tuple[str, str]] = []
    breaks: set[int] = set()
    for part in parts:
        if fields:
            breaks.add(len(fields))
        fields.extend(part.fields)
    folded, injected = fold(fields, frozenset(breaks))
    if len(parts) > 1 and not injected:
        return Quarantined(parts, "split-frame-unresolved", claimed_linkedid(parts))
    starts = [key for key, _ in folded if key.lower() in ("event", "response")]
    if not folded or folded[0][0].lower() not in ("event", "response"):
        return Quarantined(parts, "no-event", claimed_linkedid(parts))
    if len(starts) > 1:
        return Quarantined(parts, "two-events", claimed_linkedid(parts))
    frame = Frame(folded, parts[0].received_ns)
    repeated = [
        prefix + name for prefix in PREFIXES for name in ("Uniqueid", "Linkedid")
        if len(set(frame.get_all(prefix + name))) > 1
    ]  # fmt: skip
    if repeated:
        # Asterisk wrote the last one; the earlier ones came in a caller's text.
        injected.extend(repeated)
        kept: list[tuple[str, str]] = []
        for key, value in reversed(folded):
            if key in repeated and any(k == key for k, _ in kept):
                continue
            kept.append((key, value))
        folded = kept[::-1]
    if injected:
        folded.append((INJECTED_FIELD, ",".join(dict.fromkeys(injected))))
        frame = Frame(folded, parts[0].received_ns)
    return frame


class IdentityGuard:
    """Feed each read's frames in order; get back frames of Asterisk's and quarantines."""

    def __init__(self) -> None:
        self._pending: list[Frame] = []
        self.quarantined = 0
        self.injected = 0

    def feed(self, frames: Sequence[Frame]) -> list[Verdict]:
        out: list[Verdict] = []
        queue = [*self._pending, *frames]
        self._pending = []
        i = 0
        while i < len(queue):
            frame = queue[i]
            if not _is_head(frame):
                out.append(self._count(_check((frame,))))
                i += 1
                continue
            successor = _raw_field(frame.fields[-1][0])
            nxt = next((j for j in range(i + 1, len(queue)) if _is_head(queue[j])), len(queue))
            orphans = [j for j in range(i + 1, nxt) if not _starts_frame(queue[j])]
            assert successor is not None
            seen = any(_runs(queue[j].fields, successor[:1], 0) for j in range(i + 1, nxt))
            if not seen and nxt == len(queue) and len(queue) - i < MAX_PARTS:
                self._pending = queue[i:]  # the rest of this frame is in the next read
                break
            # The frame runs to the last of: a part that starts no frame, the first part with
            # Asterisk's next fields, a part with two ids of a kind (text and tail together).
            with_successor = [j for j in range(i + 1, nxt) if _runs(queue[j].fields, successor, 0)]
            doubled = [j for j in range(i + 1, nxt) if _repeats_id(queue[j])]
            end = max([i, *orphans, *with_successor[:1], *doubled]) + 1
            out.append(self._count(_check(tuple(queue[i:end]))))
            i = end
        return out

    def flush(self) -> list[Verdict]:
        """Give up on a held head: the stream went idle or ended."""
        pending, self._pending = self._pending, []
        if not pending:
            return []
        return [self._count(Quarantined(tuple(pending), "split-frame-unresolved",
                                        claimed_linkedid(pending)))]  # fmt: skip

    def _count(self, verdict: Verdict) -> Verdict:
        if isinstance(verdict, Quarantined):
            self.quarantined += 1
        elif INJECTED_FIELD in verdict:
            self.injected += 1
        return verdict


def identity_problem(frame: Frame, *, channel_event: bool) -> str | None:
    """Why an event's channel identity cannot be trusted, or None.

    ``channel_event``: the event always names a channel (the audited ones do), so having no
    ``Uniqueid``/``Linkedid`` at all is a problem too.
    """
    has_channel = False
    for prefix in PREFIXES:
        uniqueid = frame.get(prefix + "Uniqueid")
        linkedid = frame.get(prefix + "Linkedid")
        if bool(uniqueid) != bool(linkedid):
            return "half-identity"
        has_channel = has_channel or bool(uniqueid)
    if not has_channel and (channel_event or frame.get("Channel") is not None):
        return "no-identity"
    return None
