"""espeak-ng then sox: text into the two sound formats Asterisk plays (stdlib only).

One pipeline for the IVR's prompts (scripts/make-prompts, which imports this module from the
checkout) and for major-incident messages rendered when a supervisor publishes one, so both
sound alike: same voices (ivr_prompts/prompts.toml), trimming, loudness and formats.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# espeak pauses ~0.3 s at a comma; a short break keeps menus inside the call budget.
COMMA_BREAK = '<break time="80ms"/>'
# No dither (-D): sox dither is random, so every run would rewrite every committed file.
SOX = ["sox", "-D", "-V1"]
TRIM = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]
SEGMENT_GAP = "0.15"
LOUDNESS = ["gain", "-n", "-3"]
TOOLS = ("espeak-ng", "sox")


class SpeechError(RuntimeError):
    """espeak-ng or sox is missing or failed."""


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def run(command: list[str]) -> None:
    """Run a tool quietly; espeak-ng prints ALSA noise even when writing to a file."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SpeechError(f"{command[0]} failed with exit code {done.returncode}: "
                          f"{done.stderr.strip()[-300:]}")


def segments(text: Any, lang: str) -> list[tuple[str, str]]:
    """The (lang, text) segments of a manifest text: a string, or a list of strings and
    {lang, text} tables."""
    items = text if isinstance(text, list) else [text]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append((lang, item))
        else:
            out.append((item["lang"], item["text"]))
    return out


def ssml(text: str) -> str:
    return "<speak>" + html.escape(text, quote=False).replace(", ", COMMA_BREAK) + "</speak>"


def render(parts: Sequence[tuple[str, str]], voices: Mapping[str, Any], work: Path) -> Path:
    """Speak each segment, trim its silences and join them into one 22 kHz WAV."""
    trimmed = []
    for index, (lang, text) in enumerate(parts):
        voice = voices[lang]
        raw = work / f"raw{index}.wav"
        # "--" ends espeak's options: a text is never read as one.
        run(["espeak-ng", "-m", "-v", voice["espeak"], "-s", str(voice["speed"]),
             "-w", str(raw), "--", ssml(text)])
        seg = work / f"seg{index}.wav"
        gap = ["pad", "0", SEGMENT_GAP] if index < len(parts) - 1 else []
        run([*SOX, str(raw), str(seg), *TRIM, *gap])
        trimmed.append(str(seg))
    joined = work / "joined.wav"
    # A short lead-in so the first syllable is not clipped while the stream starts.
    run([*SOX, *trimmed, str(joined), "pad", "0.05", "0.05"])
    return joined


def convert(source: Path, wav: Path, sln16: Path) -> None:
    """Write both Asterisk formats next to each other, replacing old files atomically."""
    for target, fmt in (
        (wav, ["-t", "wav", "-r", "8000"]),
        (sln16, ["-t", "raw", "-L", "-r", "16000"]),
    ):
        partial = target.with_name(target.name + ".partial")
        run([*SOX, str(source), *fmt, "-c", "1", "-b", "16", "-e", "signed-integer",
             str(partial), *LOUDNESS])
        os.replace(partial, target)


def duration(wav: Path) -> float:
    with wave.open(str(wav), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def speak(parts: Sequence[tuple[str, str]], voices: Mapping[str, Any], stem: Path) -> float:
    """``<stem>.wav`` and ``<stem>.sln16`` from the segments; returns the seconds it plays."""
    missing = missing_tools()
    if missing:
        raise SpeechError(f"not installed: {', '.join(missing)}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        joined = render(parts, voices, Path(work))
        convert(joined, stem.with_name(stem.name + ".wav"), stem.with_name(stem.name + ".sln16"))
    return duration(stem.with_name(stem.name + ".wav"))
