"""The briefing for a warm transfer: summary, the assistant's LLM, or the offline template."""

from __future__ import annotations

import pytest

from pipeline.fakes import FakeLlm
from voicedock.calls.transfers.briefing import (
    BRIEFING_INSTRUCTION,
    FALLBACK_BRIEFING,
    fallback_briefing,
    write_briefing,
)
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import ProviderTimeoutError
from voicedock.pipeline.providers.rule_based import RuleBasedPolicy

pytestmark = pytest.mark.unit

HISTORY = [
    ChatMessage("assistant", "Hello, how can I help?"),
    ChatMessage("user", "My invoice 42 is wrong, I want to talk to sales."),
]


async def test_a_given_summary_wins_and_the_llm_is_not_asked() -> None:
    llm = FakeLlm(["ignored"])
    assert await write_briefing("Invoice 42", HISTORY, llm) == "Invoice 42"
    assert llm.calls == []


async def test_the_llm_writes_it_from_the_conversation() -> None:
    llm = FakeLlm([["Customer with a wrong ", "invoice 42."]])
    assert await write_briefing(None, HISTORY, llm) == "Customer with a wrong invoice 42."
    (messages,) = llm.calls
    assert messages[0] == ChatMessage("system", BRIEFING_INSTRUCTION)
    assert messages[1:] == HISTORY


async def test_a_failing_llm_falls_back_to_the_callers_last_words() -> None:
    llm = FakeLlm(error=ProviderTimeoutError("slow"))
    briefing = await write_briefing(None, HISTORY, llm)
    assert briefing.startswith(FALLBACK_BRIEFING)
    assert briefing.endswith("My invoice 42 is wrong, I want to talk to sales.")


async def test_nothing_said_yet_gives_the_plain_fallback() -> None:
    llm = FakeLlm(["never"])
    assert await write_briefing(None, HISTORY[:1], llm) == FALLBACK_BRIEFING
    assert llm.calls == []


def test_long_last_words_are_cut_at_a_word() -> None:
    briefing = fallback_briefing([ChatMessage("user", "word " * 100)])
    quoted = briefing.split("were: ", 1)[1]
    assert quoted.endswith("word…")
    assert len(quoted) <= 161


async def test_the_rule_based_policy_does_not_greet_the_agent() -> None:
    """The offline demo policy would answer "Hello! How can I help you today?"."""
    briefing = await write_briefing(None, HISTORY, RuleBasedPolicy(), context="Customer 42.")
    assert briefing == (
        "Transferring a caller: Customer 42. "
        "Their last words were: My invoice 42 is wrong, I want to talk to sales."
    )
    assert await write_briefing(None, HISTORY[:1], RuleBasedPolicy()) == FALLBACK_BRIEFING


async def test_the_llm_is_told_the_call_s_context() -> None:
    llm = FakeLlm(["Customer 42 about an invoice."])
    await write_briefing(None, HISTORY, llm, context="Customer 42, premium plan.")
    (messages,) = llm.calls
    assert messages[0].role == "system"
    assert messages[0].content.startswith(BRIEFING_INSTRUCTION)
    assert "Customer 42, premium plan." in messages[0].content


def test_a_context_alone_is_a_briefing() -> None:
    assert fallback_briefing([], context="Margaret, dentist appointment") == (
        "Transferring a caller: Margaret, dentist appointment."
    )
