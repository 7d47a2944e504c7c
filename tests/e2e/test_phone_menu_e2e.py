"""A phone menu on a real call: REST → engine → lab Asterisk → the lab's menu party (a company's
line) → Whisper → the OpenAI-compatible stand-in, asked which keys serve the assistant's goal
→ the keys through ARI → what the party collected, then its hold and the person who picks up.

The menu party (``+31612345681``) plays "For prescriptions, press 1. For appointments, press
2.", collects one key, and on 2 says "Please hold.", plays 10 s of hold music, then a person
says "Good morning, Riverside Clinic, this is Anna. How can I help you?". The assistant is to
reach the appointments desk: it presses 2 once the menu ended, says nothing during the hold,
and greets the person with its first message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import read_new_recording, require_offline_speech, transcribe, words
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from e2e.test_tools_e2e import _new_file
from fakes.llm_standin import ChatRequest, LlmStandIn, ToolCalls
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.keys_heard import keys_heard
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

MENU_PARTY = "+31612345681"
GOAL = "Reach the appointments desk to book a check-up for Jane Doe."
GREETING = "Hello, I am calling to book a check-up for Jane Doe."


def navigates(request: ChatRequest) -> str | ToolCalls:
    """Asked about a menu (offered ``navigate_menu``): presses the appointments option; any
    other request (the call's own turns): a short answer."""
    if request.tool_names == ["navigate_menu"]:
        said = request.messages[-1]["content"].lower()
        if "appointment" in said:
            return ToolCalls((("navigate_menu", {"keys": "2"}),))
        return "Waiting for the option."
    return "Thank you."


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    async with LlmStandIn(reply=navigates) as standin:
        yield standin


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "menu.db", "ari")
    settings.speech.openai_base_url = llm.base_url
    settings.speech.openai_api_key = "sk-lab-operator"
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


def assistant() -> dict[str, Any]:
    return {
        "provider": "openai",
        "first_message": GREETING,
        "stt_config": {"provider": "offline"},
        "tts_config": {"provider": "offline"},
        "system_prompt": "You book appointments for your user, Jane Doe.",
        "phone_menu": {"goal": GOAL, "max_wait_seconds": 120},
    }


def _epoch(path: Path) -> float:
    return float(path.read_text().strip())


async def test_a_menu_is_navigated_its_hold_waited_through_and_the_person_greeted(
    lab: LabAsterisk, live: LiveService, llm: LlmStandIn
) -> None:
    recordings = Path(lab.recordings_dir)
    before = set(recordings.glob("menu-*"))
    resp = await live.client.post(
        "/calls/outbound",
        json={"destination": MENU_PARTY, "assistant": assistant()},
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])

    # The model was asked once the menu ended: the goal, the menu's words, one tool.
    asked = await llm.wait_request(timeout=40)
    assert asked.tool_names == ["navigate_menu"]
    assert asked.system_prompt is not None
    assert GOAL in asked.system_prompt
    heard = words(asked.messages[-1]["content"])
    assert {"appointments", "press", "prescriptions"} <= heard, heard

    # The party collected 2, pressed after its menu had ended.
    digits = await _new_file(recordings, "menu-*-digits.txt", before)
    assert digits.read_text().strip() == "2"
    tag = digits.name.removeprefix("menu-").removesuffix("-digits.txt")
    ((key, pressed_at),) = keys_heard(recordings / f"menu-{tag}-times.txt")
    assert key == "2"
    assert pressed_at >= _epoch(recordings / f"menu-{tag}-menu-ended.txt")

    # After the hold (an announcement, 10 s of music) the person hears the first message.
    person = recordings / f"menu-{tag}-person.txt"
    async with asyncio.timeout(40):
        while not person.exists():
            await asyncio.sleep(0.2)
    async with asyncio.timeout(40):
        while not (said := await _assistant_said(live, call_id)):
            await asyncio.sleep(0.3)
    assert said == [GREETING]
    # Nothing was asked of the model during the hold: only the menu.
    assert [r.tool_names for r in llm.requests] == [["navigate_menu"]]

    await asyncio.sleep(4)  # the greeting is spoken to its end
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=30)
    steps = [e["data"] for e in ended["events"] if e["type"] == "phone-menu"]
    assert [s["heard"] for s in steps] == ["menu", "menu", "hold", "person"], steps
    assert steps[1]["pressed"] == "2"
    assert "anna" in words(steps[3]["words"]), steps[3]
    assert steps[3]["music_ms"] >= 8_000, steps[3]  # the hold music, heard as no speech

    # What the party heard: nothing of the assistant before the person, then the greeting.
    pcm, rate = await read_new_recording(recordings, f"menu-{tag}-rx.wav", set())
    heard_by_party = words(await transcribe(pcm, rate))
    assert {"check", "jane"} & heard_by_party, heard_by_party
    assert not {"thank", "waiting"} & heard_by_party, heard_by_party


async def _assistant_said(live: LiveService, call_id: str) -> list[str]:
    resp = await live.client.get(f"/calls/{call_id}", headers=live.auth())
    call = await resp.json()
    return [m["content"] for m in call.get("messages", []) if m["role"] == "assistant"]
