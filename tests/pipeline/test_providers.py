from __future__ import annotations

import pytest

from voicedock.domain.assistant_config import LlmConfig, TtsConfig
from voicedock.errors import VoicedockError
from voicedock.pipeline.analysis.post_call import analyze, heuristic_analysis
from voicedock.pipeline.frames import ChatMessage, TranscriptEntry
from voicedock.pipeline.providers.base import (
    Llm,
    ProviderConfigError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    Tts,
)
from voicedock.pipeline.providers.registry import create_llm, create_tts
from voicedock.pipeline.providers.rule_based import RuleBasedPolicy
from voicedock.pipeline.providers.section import decoded

from .fakes import FakeLlm

pytestmark = pytest.mark.unit

FACTS = {"hours|open": "We are open nine to five.", "price, cost": "A cleaning costs 80 euros."}


async def reply(policy: Llm, *messages: ChatMessage) -> str:
    return "".join([chunk async for chunk in policy.stream(list(messages))])


async def test_rule_based_greets_answers_acknowledges_and_closes() -> None:
    policy = RuleBasedPolicy(FACTS, greeting="Hi, Acme dental.")
    assert await reply(policy) == "Hi, Acme dental."
    assert await reply(policy, ChatMessage("user", "When are you OPEN?")) == FACTS["hours|open"]
    both = await reply(policy, ChatMessage("user", "opening hours and the price?"))
    assert both == "We are open nine to five. A cleaning costs 80 euros."
    echo = await reply(policy, ChatMessage("user", "I need to move my appointment."))
    assert echo.startswith("I understood: I need to move my appointment.")
    assert "Goodbye" in await reply(policy, ChatMessage("user", "ok that's all, bye"))
    update = await reply(policy, ChatMessage("system", "Code 4411 verified."))
    assert "Code 4411 verified." in update


async def test_rule_based_is_deterministic_and_word_bounded() -> None:
    policy = RuleBasedPolicy(FACTS)
    msg = ChatMessage("user", "Is it expensive, opener?")  # "open" inside "opener" is no match
    assert await reply(policy, msg) == await reply(policy, msg)
    assert "nine to five" not in await reply(policy, msg)


async def test_rule_based_facts_are_words_of_any_script_and_never_patterns() -> None:
    policy = RuleBasedPolicy(
        {"Öffnungszeiten|Tür": "Neun bis fünf.", "(a+)+$|c.t": "Literal text only."}
    )
    assert "Neun bis fünf" in await reply(
        policy, ChatMessage("user", "Wann sind die ÖFFNUNGSZEITEN?")
    )
    assert "Neun bis fünf" in await reply(policy, ChatMessage("user", "Die Tür, bitte."))
    # a keyword inside a longer word is none, in any script
    assert "Neun bis fünf" not in await reply(policy, ChatMessage("user", "Zwei Türen bitte."))
    # an organization's keywords are literal: no pattern of theirs ever runs
    assert "Literal" not in await reply(policy, ChatMessage("user", "the cat " + "a" * 5000 + "!"))
    assert "Literal" in await reply(policy, ChatMessage("user", "is it c.t or not"))


def test_registry_creates_and_validates() -> None:
    llm = create_llm(LlmConfig(provider="rule-based", facts=FACTS))
    assert isinstance(llm, RuleBasedPolicy)
    with pytest.raises(ProviderConfigError, match=r"llm\.provider 'nope'"):
        create_llm(LlmConfig(provider="nope"))
    with pytest.raises(ProviderConfigError, match=r"llm\.provider is required"):
        create_llm(LlmConfig())
    with pytest.raises(ProviderConfigError, match=r"llm\.facts"):
        create_llm(decoded(LlmConfig, {"provider": "offline", "facts": {"x": 3}}, "llm"))


def test_espeak_tts_from_registry() -> None:
    try:
        tts = create_tts(TtsConfig(provider="espeak-ng", sample_rate=16000))
    except ProviderUnavailableError:
        pytest.skip("espeak-ng not installed")
    assert isinstance(tts, Tts)
    assert tts.sample_rate == 16000


async def test_espeak_tts_speaks_each_sentence_at_call_rate() -> None:
    try:
        tts = create_tts(TtsConfig(provider="espeak-ng", sample_rate=8000))
    except ProviderUnavailableError:
        pytest.skip("espeak-ng not installed")
    chunks = [c async for c in tts.synthesize("Hello there. -v How are you?")]
    assert len(chunks) == 2
    assert all(len(c) > 8000 * 2 * 0.3 for c in chunks)  # > 0.3 s each at 8 kHz


def test_error_tree_retryable_defaults() -> None:
    assert ProviderTimeoutError("slow").retryable
    assert not ProviderConfigError("bad").retryable
    assert not ProviderTimeoutError("x", retryable=False).retryable
    assert issubclass(ProviderUnavailableError, ProviderError)
    assert issubclass(ProviderTimeoutError, VoicedockError)


async def test_the_analysis_tolerates_fences_and_clamps() -> None:
    said = [TranscriptEntry("user", "Can we move it?", 0.0, 1.0)]
    fenced = FakeLlm(['```json\n{"summary": "Moved appointment.", "sentiment": 12}\n```'])
    result = await analyze(said, fenced)
    assert (result.summary, result.sentiment, result.method) == ("Moved appointment.", 10, "llm")
    for text in ('{"summary": "x", "sentiment": true}', "fine call"):
        assert (await analyze(said, FakeLlm([text]))).method == "heuristic"


async def test_analyze_uses_llm_then_falls_back_to_heuristic() -> None:
    messages = [
        TranscriptEntry("assistant", "Hello!", 0.0, 1.0),
        TranscriptEntry("user", "Thanks, that is great, perfect.", 1.0, 2.0),
    ]
    good = FakeLlm(['{"summary": "Happy caller.", "sentiment": 9}'])
    result = await analyze(messages, good)
    assert result.method == "llm"
    assert result.sentiment == 9
    assert "user: Thanks" in good.calls[0][1].content

    broken = FakeLlm(["not json"])
    fallback = await analyze(messages, broken)
    assert fallback.method == "heuristic"
    assert fallback.sentiment > 5

    failing = FakeLlm(error=ProviderTimeoutError("slow"))
    assert (await analyze(messages, failing)).method == "heuristic"
    assert (await analyze(messages, RuleBasedPolicy())).method == "heuristic"


def test_heuristic_sentiment_direction_and_empty_call() -> None:
    angry = heuristic_analysis([ChatMessage("user", "This is terrible, I am angry, cancel it.")])
    assert angry.sentiment < 5
    silent = heuristic_analysis([ChatMessage("assistant", "Hello?")])
    assert silent.sentiment == 5
    assert "did not speak" in silent.summary
