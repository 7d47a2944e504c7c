"""An assistant's languages are built with the call's providers: each language's voice is the
assistant's TTS speaking that voice, its line the language's prompt or "Answer in German.",
detected by the offline Whisper (a recognizer that tells no language detects none: the call
stays in its opening language); a language's voice wins over an ElevenLabs ``voice_id``; an
assistant without languages follows none."""

from __future__ import annotations

import pytest

from voicedock.calls.live.providers import build_providers
from voicedock.domain.assistant_config import config_of
from voicedock.pipeline.providers.elevenlabs import ElevenLabsTts
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


async def test_without_languages_none_and_without_a_detecting_recognizer_only_the_opening() -> None:
    plain = await build_providers(config_of(BASE))
    deepgram = {"provider": "deepgram", "api_key": "dg-test"}
    listed = {**BASE, "stt_config": deepgram, "languages": [{"language": "de"}]}
    cloud = await build_providers(config_of(listed))
    try:
        assert plain.languages is None
        assert cloud.languages is not None
        assert cloud.languages._detector is None  # it never switches, it may open in "de"
        assert await cloud.languages.heard(b"\0\0" * 8000, 8000, 5) == "en"
        assert cloud.languages.open_in("de") is cloud.languages.spoken("de")
        assert cloud.languages.current == "de"
        assert cloud.languages.open_in("fr") is None  # not listed: it stays where it is
        assert cloud.languages.current == "de"
    finally:
        await plain.aclose()
        await cloud.aclose()


async def test_an_elevenlabs_voice_id_does_not_speak_for_a_language_with_its_own_voice() -> None:
    elevenlabs = {"provider": "elevenlabs", "api_key": "el-test", "voice_id": "OwnVoice01"}
    languages = [{"language": "de", "voice": {"voice": "GermanVoice1"}}, {"language": "fr"}]
    config = {**BASE, "tts_config": elevenlabs, "languages": languages}
    providers = await build_providers(config_of(config))
    try:
        assert isinstance(providers.tts, ElevenLabsTts)
        assert providers.tts._url.endswith("/text-to-speech/OwnVoice01/stream")
        assert providers.languages is not None
        de, fr = providers.languages.spoken("de"), providers.languages.spoken("fr")
        assert de is not None
        assert fr is not None
        assert isinstance(de.voice, ElevenLabsTts)
        assert de.voice._url.endswith("/text-to-speech/GermanVoice1/stream")
        assert fr.voice is None  # the assistant's own: its voice_id
    finally:
        await providers.aclose()
