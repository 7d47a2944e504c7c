"""What the operator's ``[speech]`` section sets for the node's offline engines: the host's
files, devices and threads of Whisper and Piper. These keys of a section never come from an
assistant; a live call's providers (``calls/live/providers.py``), the runner's recognition
pool and a warm transfer's decision (``calls/transfers/decision.py``) all read them here."""

from __future__ import annotations

import os

from voicedock.calls.assistants.config import WHISPER_NAMES
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import SttConfig, TtsConfig
from voicedock.domain.json import JsonObject
from voicedock.pipeline.providers.section import decoded

_PIPER_NAMES = frozenset({"offline", "piper"})


def operator_settings(key: str, provider: str, speech: SpeechSettings) -> JsonObject:
    """What the operator's ``[speech]`` section sets for an offline engine (the host's files,
    devices and threads); these keys of a section never come from an assistant."""
    if key == "stt_config" and provider in WHISPER_NAMES:
        workers, threads = recognition_threads(speech)
        return {
            "model_path": speech.whisper_model_path or None,
            "cache_dir": speech.whisper_cache_dir or None,
            "device": speech.whisper_device,
            "compute_type": speech.whisper_compute_type,
            "cpu_threads": threads,
            "num_workers": workers,
        }
    if key == "tts_config" and provider in _PIPER_NAMES:
        return {"model_path": speech.piper_model_path or None}
    return {}


def uses_offline_speech(speech: SpeechSettings) -> bool:
    """Whether the node's own engines (``[speech] stt`` and ``tts``) run models on its cores:
    Whisper or Piper. Otherwise its speech is the cloud's (or light: espeak-ng), and a call
    costs the node little more than its media (docs/performance/sizing.md)."""
    return speech.stt in WHISPER_NAMES or speech.tts in _PIPER_NAMES


def operator_stt(provider: str, speech: SpeechSettings) -> SttConfig:
    """The section of the node's own ``provider`` STT, with the operator's host settings (what
    the warm-up and a warm transfer's answer are transcribed with)."""
    key = "stt_config"
    return decoded(
        SttConfig, {"provider": provider, **operator_settings(key, provider, speech)}, key
    )


def operator_tts(provider: str, speech: SpeechSettings) -> TtsConfig:
    """The section of the node's own ``provider`` TTS, with the operator's host settings."""
    key = "tts_config"
    return decoded(
        TtsConfig, {"provider": provider, **operator_settings(key, provider, speech)}, key
    )


def recognition_threads(speech: SpeechSettings) -> tuple[int, int]:
    """Whisper's parallel transcriptions and threads per transcription. With the recognition
    pool: one per pool worker (``recognition_workers``, default the cores), the cores shared
    among them unless ``whisper_cpu_threads`` is set; without it, one model worker with
    CTranslate2's default threads (0), as before the pool."""
    if not speech.recognition_pool:
        return 1, speech.whisper_cpu_threads
    cores = os.cpu_count() or 1
    workers = speech.recognition_workers or cores
    return workers, speech.whisper_cpu_threads or max(1, cores // workers)
