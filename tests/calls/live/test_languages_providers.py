"""An assistant's languages are built with the call's providers: each language's voice is the
assistant's TTS speaking that voice, its line the language's prompt or "Answer in German.",
detected by the offline Whisper; an assistant without languages, or whose recognizer tells
no language, follows none."""

from __future__ import annotations

import pytest

from voicedock.calls.live.providers import build_providers
from voicedock.domain.assistant_config import config_of
from voicedock.pipeline.providers.espeak_tts import EspeakTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt

pytestmark = pytest.mark.unit

BASE = {
    "system_prompt": "Be brief.",
    "llm_config": {"provider": "rule-based"},
    "stt_config": {"provider": "offline", "language": None},
    "tts_config": {"provider": "espeak-ng", "voice": "en-us"},
}


async def test_each_language_gets_its_voice_and_its_line() -> None:
    languages = [
        {"language": "de", "voice": {"voice": "de"}},
        {"language": "fr", "prompt": "Réponds en français."},
    ]
    providers = await build_providers(config_of({**BASE, "languages": languages}))
    try:
        call = providers.languages
        assert call is not None
        assert call.current == "en"
        de, fr = call.spoken("de"), call.spoken("fr")
        assert de is not None
        assert fr is not None
        assert de.instruction == "Answer in German."
        assert isinstance(de.voice, EspeakTts)
        assert de.voice._voice == "de"
        assert fr.instruction == "Réponds en français."
        assert fr.voice is None  # the assistant's own voice
        assert isinstance(call._detector, WhisperStt)
    finally:
        await providers.aclose()


async def test_without_languages_or_a_detecting_recognizer_the_call_follows_none() -> None:
    plain = await build_providers(config_of(BASE))
    deepgram = {"provider": "deepgram", "api_key": "dg-test"}
    listed = {**BASE, "stt_config": deepgram, "languages": [{"language": "de"}]}
    cloud = await build_providers(config_of(listed))
    try:
        assert plain.languages is None
        assert cloud.languages is None
    finally:
        await plain.aclose()
        await cloud.aclose()
