"""The IVR's sound files: where they are for Asterisk, and how long each one plays."""

from __future__ import annotations

import os
import wave
from collections.abc import Iterable
from pathlib import Path


class PromptSet:
    """Checks at startup that every prompt exists in every language, and reads durations.

    Durations come from the 8 kHz .wav headers, so a longer human recording dropped in
    place of a TTS file is accounted for in the IVR's time budget without code changes.
    """

    def __init__(
        self, root: str | os.PathLike[str], prompts: Iterable[str], languages: Iterable[str]
    ) -> None:
        self._root = Path(root).resolve()
        self._durations: dict[tuple[str, str], float] = {}
        for language in languages:
            for prompt in prompts:
                wav = self._root / language / f"{prompt}.wav"
                self._durations[language, prompt] = _duration(wav)

    def path(self, language: str, prompt: str) -> str:
        """Absolute path without extension, as STREAM FILE wants it."""
        return str(self._root / language / prompt)

    def duration(self, language: str, prompt: str) -> float:
        return self._durations[language, prompt]


def _duration(wav: Path) -> float:
    try:
        with wave.open(str(wav), "rb") as audio:
            rate, channels, width = audio.getframerate(), audio.getnchannels(), audio.getsampwidth()
            frames = audio.getnframes()
    except FileNotFoundError:
        raise FileNotFoundError(f"IVR prompt missing: {wav} (see ivr_prompts/README.md)") from None
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"IVR prompt {wav} is not a PCM WAV file: {exc}") from None
    # Asterisk's wav format is exactly this; anything else fails at play time, mid-call.
    if (rate, channels, width) != (8000, 1, 2):
        raise ValueError(
            f"IVR prompt {wav} is {rate} Hz, {channels} channel(s), {8 * width}-bit; "
            "Asterisk needs 8000 Hz mono 16-bit"
        )
    return frames / rate
