"""Whisper tells which of an assistant's languages a caller speaks: German speech is heard as
``de`` among en and de, surely (its probability among the listed languages alone); a language
the assistant does not list is never reported."""

from __future__ import annotations

import pytest

from voicedock.domain.assistant_config import SttConfig
from voicedock.pipeline.hearing.language import SWITCH_PROBABILITY
from voicedock.pipeline.providers.base import DetectedLanguage, LanguageDetectingStt
from voicedock.pipeline.providers.whisper.stt import WhisperStt, most_likely

from ...synth import espeak

pytestmark = pytest.mark.unit


def test_the_most_likely_listed_language_is_reported() -> None:
    heard = [("nl", 0.6), ("de", 0.3), ("en", 0.1)]
    among = frozenset({"en", "de"})
    assert most_likely(heard, among) == DetectedLanguage("de", pytest.approx(0.75))
    assert most_likely(heard, frozenset({"fr"})) is None


async def test_german_speech_is_detected_as_german_among_the_assistants_languages() -> None:
    german = espeak(
        "Können Sie mir bitte sagen, wann die Praxis morgen geöffnet hat?",
        rate=16000,
        voice="de",
    )
    english = espeak("Hello, I would like to book an appointment for next week.", rate=16000)
    if german is None or english is None:
        pytest.skip("espeak-ng is not installed")
    stt = WhisperStt(SttConfig(language=None))
    assert isinstance(stt, LanguageDetectingStt)
    among = frozenset({"en", "de"})
    de = await stt.detect_language(german, 16000, among)
    en = await stt.detect_language(english, 16000, among)
    assert de is not None
    assert de.language == "de"
    assert de.probability >= SWITCH_PROBABILITY
    assert en is not None
    assert en.language == "en"
    assert await stt.detect_language(b"", 16000, among) is None
