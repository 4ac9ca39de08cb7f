"""The committed IVR prompt files and the make-prompts generator."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
import wave
from pathlib import Path

import pytest

from telephony.agi.ivr import LANGUAGES, PROMPTS

ROOT = Path(__file__).resolve().parents[2]
PROMPT_DIR = ROOT / "ivr_prompts"
MANIFEST = tomllib.loads((PROMPT_DIR / "prompts.toml").read_text(encoding="utf-8"))


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        return audio.getnframes() / 8000


@pytest.mark.parametrize("prompt", sorted(MANIFEST["prompts"]))
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_prompt_exists_in_both_formats(prompt: str, language: str) -> None:
    wav = PROMPT_DIR / language / f"{prompt}.wav"
    sln16 = PROMPT_DIR / language / f"{prompt}.sln16"
    seconds = wav_seconds(wav)

    assert 0.3 < seconds < 10
    # 16 kHz, 16-bit mono raw: 32000 bytes a second.
    assert abs(sln16.stat().st_size / 32000 - seconds) < 0.01
    limit = MANIFEST["prompts"][prompt].get("max_seconds")
    assert limit is None or seconds <= limit


def test_manifest_covers_what_the_ivr_plays() -> None:
    assert set(PROMPTS) <= set(MANIFEST["prompts"])
    for entry in MANIFEST["prompts"].values():
        assert set(LANGUAGES) <= set(entry)


# scripts/test installs both, so CI runs this; only a bare developer machine skips it.
@pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")) and not os.environ.get("CI"),
    reason="needs espeak-ng and sox",
)
def test_make_prompts_keeps_human_recordings(tmp_path: Path) -> None:
    (tmp_path / "prompts.toml").write_text(
        '[voices.id]\nespeak = "id"\nspeed = 200\n[voices.en]\nespeak = "en"\nspeed = 185\n'
        '[prompts.welcome]\nid = "Halo, apa kabar."\n'
        'en = ["Hello.", { lang = "id", text = "Halo." }]\n',
        encoding="utf-8",
    )
    (tmp_path / "id").mkdir()
    human = tmp_path / "id" / "welcome.wav"
    shutil.copy(PROMPT_DIR / "id" / "invalid.wav", human)
    (tmp_path / "id" / "welcome.human").write_text("recorded by the PSAP\n")
    before = human.read_bytes()

    done = subprocess.run([str(ROOT / "scripts" / "make-prompts"), str(tmp_path)],
                          capture_output=True, text=True, check=False)

    assert done.returncode == 0, done.stderr
    assert human.read_bytes() == before
    assert not (tmp_path / "id" / "welcome.sln16").exists()
    assert wav_seconds(tmp_path / "en" / "welcome.wav") > 0.5
    assert (tmp_path / "en" / "welcome.sln16").stat().st_size > 0
    assert "(human)" in done.stdout
