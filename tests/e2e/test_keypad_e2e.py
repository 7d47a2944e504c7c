"""Caller keypad input on a real call: REST → engine → lab Asterisk → the keypad party, which
presses 1234# (RFC 4733 through the trunk, DTMF_END on voicedock's media leg) → ONE user turn
"Keypad: 1234#" → the OpenAI-compatible stand-in (``fakes.llm_standin``) named by the
assistant's ``llm_config``. The model received exactly that one user message; the call's
transcript, its stored events and its SSE stream show it. Speech goes through ``SpeechFakes``
(no models). ``tests/freeswitch_lab/test_keypad.py`` runs the same call on the lab FreeSWITCH.

With the keypad turned off (``"keypad": {"enabled": false}``) the same party's keys, pressed
while the first message plays, neither cut it nor reach the model: a response asked for after
them carries no ``Keypad:`` turn, and the transcript has none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from e2e.test_events_e2e import sse_messages
from fakes.llm_standin import LlmStandIn
from pbx.freeswitch.live_service import speech_fakes
from voicedock_lab.freeswitch_config import KEYPAD
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(90)]

KEYS = "Keypad: 1234#"
REPLY = "Thank you, I have your code."
# Long enough to still be playing when the party presses its keys (3 s to 4.25 s after it
# answers): the speech fakes speak 5 ms a character, about 7 s here.
LONG_GREETING = " ".join(["Welcome to the payment line of the city library."] * 28)


def keypad_assistant(llm: LlmStandIn) -> dict[str, Any]:
    """A short greeting, a keypad plan the party's 1234# ends with its terminator (the
    timeout is long enough that only the # can end it), the model is the stand-in."""
    return {
        "first_message": "Hello.",
        "keypad": {"timeout_seconds": 10, "terminator": "#", "max_digits": 8},
        "llm_config": {
            "provider": "openai-compatible",
            "base_url": llm.base_url,
            "api_key": "sk-lab",
            "model": "lab-model",
        },
    }


async def keypad_call(live: LiveService, llm: LlmStandIn) -> None:
    """Call the keypad party; check what the model received and what the call shows."""
    status, reply = await live.post(
        "/calls/outbound", {"destination": KEYPAD, "assistant": keypad_assistant(llm)}
    )
    assert status == 200, reply
    call_id = str(reply["call_id"])
    request = await llm.wait_request(timeout=30)
    users = [m["content"] for m in request.messages if m["role"] == "user"]
    assert users == [KEYS]  # one turn, not a message per digit
    assert not any("pressed" in str(m.get("content")) for m in request.messages)
    await live.wait_status(call_id, ("in-progress",))
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=30)
    assert ended["status"] == "ended"
    said = [(m["role"], m["content"]) for m in ended["messages"]]
    assert said.count(("user", KEYS)) == 1
    assert said.index(("user", KEYS)) < said.index(("assistant", REPLY))
    assert [m for m in said if m[0] == "user"] == [("user", KEYS)]
    stored = [e["data"]["content"] for e in ended["events"] if e["type"] == "transcript"]
    assert stored.count(KEYS) == 1
    # The call's SSE stream replays the same turn.
    stream = await live.client.get(f"/calls/{call_id}/events", headers=live.auth())
    assert stream.status == 200
    events, _ = sse_messages((await stream.read()).decode())
    streamed = [e["data"]["data"]["content"] for e in events if e.get("event") == "transcript"]
    assert streamed.count(KEYS) == 1, events


async def keypad_off_call(live: LiveService, llm: LlmStandIn) -> None:
    """Call the keypad party with the keypad off; its keys must change nothing."""
    assistant = keypad_assistant(llm)
    assistant["first_message"] = LONG_GREETING
    assistant["keypad"] = {**assistant["keypad"], "enabled": False}
    status, reply = await live.post(
        "/calls/outbound", {"destination": KEYPAD, "assistant": assistant}
    )
    assert status == 200, reply
    call_id = str(reply["call_id"])
    await live.wait_status(call_id, ("in-progress",))
    await asyncio.sleep(9)  # the party's keys (3-4.25 s) and the greeting's end (about 7 s)
    assert llm.requests == []  # the keys ended no entry: nothing for the model to answer
    command = {"type": "inject-context", "content": "Ask for the code.", "trigger_response": True}
    await control(live, call_id, command)
    request = await llm.wait_request(timeout=30)  # asked after the keys were pressed
    assert not any("Keypad" in str(m.get("content")) for m in request.messages)
    assert [m for m in request.messages if m["role"] == "user"] == []
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=30)
    assert ended["status"] == "ended"
    assert not any("Keypad" in m["content"] for m in ended["messages"])
    greeting = ended["messages"][0]
    assert (greeting["role"], greeting["content"]) == ("assistant", LONG_GREETING)  # all of it
    stored = [e["data"] for e in ended["events"] if e["type"] == "transcript"]
    assert (stored[0]["content"], stored[0]["interrupted"]) == (LONG_GREETING, False)
    assert not any("Keypad" in data["content"] for data in stored)


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn(reply=REPLY) as standin:
        yield standin


async def test_the_party_keys_reach_the_model_as_one_user_turn(
    lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn
) -> None:
    async with speech_fakes() as (name, _fakes):
        settings = service_settings(lab, tmp_path / "keypad.db", "ari")
        settings.speech.stt = settings.speech.tts = name
        settings.egress.allow_loopback = True  # the stand-in LLM is on loopback
        live = await serve(settings)
        try:
            await keypad_call(live, llm)
        finally:
            await live.client.close()


async def test_with_the_keypad_off_the_party_keys_never_reach_the_model(
    lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn
) -> None:
    async with speech_fakes() as (name, _fakes):
        settings = service_settings(lab, tmp_path / "keypad-off.db", "ari")
        settings.speech.stt = settings.speech.tts = name
        settings.egress.allow_loopback = True  # the stand-in LLM is on loopback
        live = await serve(settings)
        try:
            await keypad_off_call(live, llm)
        finally:
            await live.client.close()
