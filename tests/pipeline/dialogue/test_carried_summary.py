"""The call so far as a summary for the squad member it is handed over to: one request to
the call's model, its answer as one note; the last messages when the model fails, is too
slow or answers too much, or there is none that summarises."""

from __future__ import annotations

import pytest

from pipeline.fakes import FakeLlm
from voicedock.pipeline.dialogue.carried import (
    FALLBACK_MESSAGES,
    MAX_SUMMARY_CHARS,
    SUMMARY_NOTE,
    SUMMARY_PROMPT,
    carried_summary,
)
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import Llm, ProviderServerError
from voicedock.pipeline.providers.rule_based import RuleBasedPolicy

pytestmark = pytest.mark.unit

CALL = tuple(
    ChatMessage("user" if n % 2 else "assistant", f"message {n}")
    for n in range(FALLBACK_MESSAGES + 3)
)


async def test_the_model_summarises_the_call_in_one_request() -> None:
    llm = FakeLlm(["The caller asks about invoice 42."])
    carried = await carried_summary(CALL, llm)
    assert carried == (ChatMessage("system", f"{SUMMARY_NOTE} The caller asks about invoice 42."),)
    [request] = llm.calls
    assert request[0] == ChatMessage("system", SUMMARY_PROMPT)
    assert "Caller: message 1" in request[1].content
    assert "Assistant: message 0" in request[1].content


@pytest.mark.parametrize(
    "llm",
    [
        FakeLlm(error=ProviderServerError("down")),
        FakeLlm(first_token_delay=1.0),
        FakeLlm(["x" * (MAX_SUMMARY_CHARS + 1)]),
        FakeLlm([" "]),
        RuleBasedPolicy(),
        None,
    ],
    ids=["fails", "slow", "too-long", "empty", "rule-based", "none"],
)
async def test_without_a_summary_the_last_messages_are_carried(llm: Llm | None) -> None:
    carried = await carried_summary(CALL, llm, timeout_s=0.2)
    assert carried == CALL[-FALLBACK_MESSAGES:]
