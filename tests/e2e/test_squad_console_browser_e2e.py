"""The web console in a real headless Chromium on a squad's call through the lab Asterisk:
each assistant line of the transcript names the assistant whose turn it was, live, the
receptionist's greeting by its name and billing's transition, after the handoff, by billing's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from e2e.audio_helpers import UTTERANCE_PARTY
from e2e.browser import headless_chromium, screenshot_path
from e2e.conftest import LiveService
from e2e.test_console_browser_e2e import (
    end_call,
    open_call_from_list,
    signed_in,
    transcript,
    wait_for,
    whole_page_screenshot,
)
from e2e.test_squads_e2e import SQUAD, TRANSITION, _squad_call, live, llm
from fakes.llm_standin import LlmStandIn
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]
__all__ = ["live", "llm"]  # the squad tests' fixtures


def _named(member: dict[str, Any], name: str) -> dict[str, Any]:
    return {**member, "assistant": {**member["assistant"], "name": name}}


NAMED_SQUAD = {
    **SQUAD,
    "members": [
        _named(SQUAD["members"][0], "Reception"),
        _named(SQUAD["members"][1], "Billing desk"),
    ],
}


def _speakers(driver: Any) -> list[tuple[str, ...]]:
    """Once billing's transition is shown: each assistant line as (who, what)."""

    def shown(d: Any) -> list[tuple[str, ...]] | bool:
        lines = [text for cls, text in transcript(d) if "assistant" in cls]
        if not any(TRANSITION in line for line in lines):
            return False
        return [tuple(part.strip() for part in line.split(":", 1)) for line in lines]

    return list(wait_for(driver, shown, "billing's transition"))


async def test_the_console_names_the_assistant_of_each_line(
    lab: LabAsterisk, live: LiveService, llm: LlmStandIn
) -> None:
    base = f"http://127.0.0.1:{live.client.port}"
    with headless_chromium() as driver:
        await asyncio.to_thread(signed_in, driver, base, live.key)
        call_id = await _squad_call(live, UTTERANCE_PARTY, NAMED_SQUAD)
        await asyncio.to_thread(open_call_from_list, driver, call_id)
        lines = await asyncio.to_thread(_speakers, driver)
        assert lines[0] == ("Reception", "Front desk."), lines
        assert ("Billing desk", TRANSITION) in lines, lines
        # the handoff is the assistant's tool call, never labelled as the caller's words
        shown = await asyncio.to_thread(transcript, driver)
        tools = [text for cls, text in shown if cls.split()[0] in ("tool_calls", "tool")]
        assert any(text.startswith("Assistant (tool call):") for text in tools), shown
        assert all("user" in cls.split() for cls, text in shown if text.startswith("Caller:")), (
            shown
        )
        shot = screenshot_path("console-squad-call.png")
        assert await asyncio.to_thread(whole_page_screenshot, driver, shot)
        await asyncio.to_thread(end_call, driver)
