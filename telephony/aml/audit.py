"""The UserEvents that put handset fixes into the audit chain (pure header building).

The console sends them on its AMI session and serve's writer chains them, as it does the
console's own actions (telephony.console.actions says why). A fix matched to a call carries
its Linkedid with the matching Uniqueid (the call's first channel), so the identity guard
takes it. A fix no call claims when it arrives, or one refused, is sent with no ids and
chained under no call (an empty linkedid; telephony.audit.events.names_a_channel); if a call
claims it later, it is sent again with the call's ids.
The raw message travels percent-encoded (one safe AMI line, no CR/LF) in parts short enough
for Asterisk's 1 KiB header lines, with its SHA-256 so a part lost on the way shows.
"""

from __future__ import annotations

from urllib.parse import quote

from telephony.aml.store import Stored
from telephony.contract import UserEvent

RAW_PART = 700
RAW_PARTS = 12  # 8 KiB, the largest body the receiver takes


def _identity(linkedid: str | None) -> dict[str, str]:
    return {"Linkedid": linkedid, "Uniqueid": linkedid} if linkedid else {}


def fix_event(fix: Stored, raw: str) -> dict[str, str]:
    encoded = quote(raw, safe="")
    parts = [encoded[i:i + RAW_PART] for i in range(0, len(encoded), RAW_PART)][:RAW_PARTS]
    headers = {
        "UserEvent": UserEvent.AML_FIX.value, "FixId": str(fix.id), "Sender": fix.sender,
        "Transport": fix.transport, "Number": fix.number, "Rejected": fix.rejected,
        "Lat": "" if fix.lat is None else f"{fix.lat:.6f}",
        "Lon": "" if fix.lon is None else f"{fix.lon:.6f}",
        "Accuracy": "" if fix.accuracy_m is None else f"{fix.accuracy_m:.1f}",
        "FixedAt": "" if fix.fixed_at is None else f"{fix.fixed_at:.3f}",
        "Method": fix.method, "ReceivedAt": f"{fix.received_at:.3f}",
        "RawSha256": fix.raw_sha256, "RawParts": str(len(parts)),
        **_identity(fix.linkedid),
    }
    headers.update({f"Raw{i + 1}": part for i, part in enumerate(parts)})
    return headers
