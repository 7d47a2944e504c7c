"""A caller who answers in another of the assistant's languages is answered in it: the model
is asked to answer in it (the language's prompt line, or "Answer in German."), and the
language's voice speaks; a one-word turn or an unsure detection changes nothing."""

from __future__ import annotations

import pytest

from voicedock.pipeline.dialogue.turn_engine import TurnEngine, TurnParts
from voicedock.pipeline.hearing.language import CallLanguages, SpokenLanguage, answer_in
from voicedock.pipeline.providers.base import DetectedLanguage

from .fakes import FakeLlm, FakeSink, FakeStt, FakeTts
from .test_turn_engine import config, speak, until

pytestmark = pytest.mark.unit


class FakeDetector:
    """Detects the languages it is given, one per turn."""

    def __init__(self, heard: list[DetectedLanguage | None]) -> None:
        self.heard = heard
        self.among: list[frozenset[str]] = []

    def detect_language_blocking(
        self, pcm: bytes, sample_rate: int, among: frozenset[str]
    ) -> DetectedLanguage | None:
        self.among.append(among)
        return self.heard.pop(0)


async def conversation(
    said: list[str], detected: list[DetectedLanguage | None], prompt: str | None = None
) -> tuple[FakeLlm, FakeTts, FakeTts, FakeDetector, list[str | None]]:
    stt, llm, tts, german = FakeStt(said), FakeLlm(), FakeTts(), FakeTts()
    llm.replies = [["Reply one."], ["Reply two."]]
    detector = FakeDetector(detected)
    de = SpokenLanguage("de", prompt or answer_in("de"), german)
    languages = CallLanguages("en", [de], detector)
    parts = TurnParts(stt=stt, llm=llm, tts=tts, sink=FakeSink(instant=True), languages=languages)
    async with TurnEngine(parts, config()) as conv:
        for turn in range(len(said)):
            speak(conv)
            await until(lambda n=turn: len(conv.transcript) == 2 * (n + 1))
    return llm, tts, german, detector, [entry.language for entry in conv.transcript]


async def test_a_caller_speaking_german_is_answered_in_german_in_the_german_voice() -> None:
    said = ["Hello, I have a question.", "Guten Tag, ich hätte gerne einen Termin."]
    llm, tts, german, detector, languages = await conversation(
        said, [DetectedLanguage("en", 0.99), DetectedLanguage("de", 0.95)]
    )
    assert languages == ["en", "en", "de", "de"]  # each message says its language
    first, second = llm.calls
    assert "German" not in first[0].content
    assert second[0].content.endswith("Answer in German.")
    assert tts.texts == ["Reply one."]
    assert german.texts == ["Reply two."]
    assert detector.among == [frozenset({"en", "de"})] * 2


async def test_the_languages_own_prompt_line_is_the_models_instruction() -> None:
    said = ["Guten Tag, ich hätte gerne einen Termin."]
    llm, _, german, _, _ = await conversation(
        said, [DetectedLanguage("de", 0.9)], prompt="Antworte auf Deutsch und sieze den Anrufer."
    )
    assert llm.calls[0][0].content.endswith("Antworte auf Deutsch und sieze den Anrufer.")
    assert german.texts == ["Reply one."]


async def test_an_unsure_detection_or_a_short_turn_keeps_the_call_in_its_language() -> None:
    said = ["Ja.", "Guten Tag, ich hätte gerne einen Termin."]
    llm, tts, german, detector, _ = await conversation(said, [DetectedLanguage("de", 0.6)])
    assert all("German" not in call[0].content for call in llm.calls)
    assert tts.texts == ["Reply one.", "Reply two."]
    assert german.texts == []
    assert len(detector.among) == 1  # the one-word turn is not even asked about
