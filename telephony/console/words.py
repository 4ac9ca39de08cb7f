"""Names shared by the API, the pages and the audit: defined once, with their labels.

The pages receive these tables as JSON (``page_words``), so a category or reason exists in
exactly one place. Bahasa Indonesia first, then English.
"""

from __future__ import annotations

from telephony.contract import UserEvent
from telephony.operators.presence import PAUSE_REASONS

CATEGORIES = ("emergency", "information", "prank", "ghost", "wrong-number", "test")
# Classifications that count towards a number's nuisance badge (never a block).
NUISANCE = ("prank", "ghost")
CALLBACK_OUTCOMES = ("reached", "no-answer", "not-needed", "wrong-number")
PRESENCE_STATES = ("available", "paused", "logged-out")
# The UserEvent name of every console action in the audit chain.
AUDIT_EVENT = UserEvent.CONSOLE_ACTION.value
NOTE_MAX = 200

LABELS: dict[str, dict[str, str]] = {
    "emergency": {"id": "Darurat", "en": "Emergency"},
    "information": {"id": "Informasi", "en": "Information"},
    "prank": {"id": "Iseng", "en": "Prank"},
    "ghost": {"id": "Diam / hantu", "en": "Ghost / silent"},
    "wrong-number": {"id": "Salah sambung", "en": "Wrong number"},
    "test": {"id": "Uji coba", "en": "Test"},
    "police": {"id": "Polisi", "en": "Police"},
    "medical": {"id": "Medis", "en": "Medical"},
    "fire": {"id": "Kebakaran", "en": "Fire"},
    "sar": {"id": "SAR", "en": "Search and rescue"},
    "disaster": {"id": "Bencana", "en": "Disaster"},
    "unknown": {"id": "Tidak dipilih", "en": "Not chosen"},
    "break": {"id": "Istirahat", "en": "Break"},
    "wrap-up": {"id": "Menyelesaikan", "en": "Wrap-up"},
    "training": {"id": "Pelatihan", "en": "Training"},
    "other": {"id": "Lainnya", "en": "Other"},
    "available": {"id": "Siap", "en": "Available"},
    "paused": {"id": "Jeda", "en": "Paused"},
    "logged-out": {"id": "Keluar", "en": "Logged out"},
    "reached": {"id": "Tersambung", "en": "Reached"},
    "no-answer": {"id": "Tidak dijawab", "en": "No answer"},
    "not-needed": {"id": "Tidak perlu", "en": "Not needed"},
    "withheld": {"id": "Nomor disembunyikan", "en": "Number withheld"},
    "none": {"id": "Tanpa nomor", "en": "No number"},
    "handset": {"id": "Lokasi perangkat", "en": "Handset location"},
    "network": {"id": "Lokasi jaringan", "en": "Network location"},
    "ringing": {"id": "Berdering", "en": "Ringing"},
    "connected": {"id": "Tersambung", "en": "Connected"},
    "queued": {"id": "Antre", "en": "Queued"},
    "ivr": {"id": "Di IVR", "en": "In the IVR"},
    "ended": {"id": "Selesai", "en": "Ended"},
    "answered": {"id": "Dijawab", "en": "Answered"},
    "abandoned-in-ivr": {"id": "Ditutup di IVR", "en": "Hung up in the IVR"},
    "abandoned-in-queue": {"id": "Ditutup saat antre", "en": "Hung up while queued"},
    "overflowed-then-answered": {"id": "Dilimpahkan lalu dijawab",
                                 "en": "Overflowed, then answered"},
    "failed": {"id": "Gagal", "en": "Failed"},
    "id": {"id": "Bahasa Indonesia", "en": "Indonesian"},
    "en": {"id": "Bahasa Inggris", "en": "English"},
    "db-down": {"id": "Basis data tidak dapat dijangkau: riwayat dan tindakan tertunda.",
                "en": "The database cannot be reached: history and actions are on hold."},
    "ami-down": {"id": "Koneksi ke Asterisk (AMI) terputus: panggilan baru tidak tampil.",
                 "en": "The link to Asterisk (AMI) is down: new calls do not show."},
    "live-down": {"id": "Koneksi ke konsol terputus, menyambung ulang...",
                  "en": "Lost the link to the console, reconnecting..."},
}

assert all(reason in LABELS for reason in PAUSE_REASONS)
assert all(name in LABELS for name in (*CATEGORIES, *CALLBACK_OUTCOMES, *PRESENCE_STATES))


def page_words() -> dict[str, object]:
    return {
        "categories": list(CATEGORIES),
        "pause_reasons": list(PAUSE_REASONS),
        "callback_outcomes": list(CALLBACK_OUTCOMES),
        "labels": LABELS,
    }
