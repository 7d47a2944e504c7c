"""What a warm transfer says to the agent (``AgentDialogue``); its listening: test_decision."""

from __future__ import annotations

import pytest

from voicedock.calls.transfers.agent import (
    BRIEFING_PROMPT,
    DEFAULT_BRIEFING,
    VOICE_BRIEFING_PROMPT,
    AgentDialogue,
)

pytestmark = pytest.mark.unit


def test_the_briefing_is_followed_by_the_prompt_that_fits_the_answers_allowed() -> None:
    dialogue = AgentDialogue()
    assert dialogue.briefing_text("Invoice 42.", voice_decision=True) == (
        "Invoice 42. Press 1 or say yes to take the call; press 2 or say no to decline."
    )
    assert dialogue.briefing_text("Invoice 42.", voice_decision=False) == (
        f"Invoice 42. {BRIEFING_PROMPT}"
    )


@pytest.mark.parametrize("briefing", [None, ""])
def test_a_call_without_a_briefing_gets_the_default_one(briefing: str | None) -> None:
    text = AgentDialogue().briefing_text(briefing, voice_decision=True)
    assert text == f"{DEFAULT_BRIEFING} {VOICE_BRIEFING_PROMPT}"
