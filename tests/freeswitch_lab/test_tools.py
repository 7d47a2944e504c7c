"""Built-in tools on the real lab FreeSWITCH: the model's ``send_dtmf`` reaches the called
party as digits (``uuid_send_dtmf``), its ``transfer_call`` ends in a native transfer
(``uuid_transfer`` to the internal target), its ``end_call`` hangs the call up by itself. The
model is the OpenAI-compatible stand-in (``fakes.llm_standin``) named by the assistant's own
``llm_config``; the caller's words come from the scripted STT of ``SpeechFakes``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from e2e.test_audio_e2e import wait_recorded
from fakes.llm_standin import ChatRequest, LlmStandIn, ToolCalls
from freeswitch_lab.lab_service import LabService
from pbx.freeswitch.live_service import TERMINAL, until
from voicedock_lab.freeswitch_config import UTTERANCE

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(90)]

DTMF_PARTY = "+31612345680"  # says the appointment utterance, then collects DTMF


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn() as standin:
        yield standin


def assistant(llm: LlmStandIn, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Speech through the operator's engines (the fakes); the model is the stand-in."""
    return {
        "first_message": "Hello.",
        "llm_config": {
            "provider": "openai-compatible",
            "base_url": llm.base_url,
            "api_key": "sk-lab",
            "model": "lab-model",
        },
        "tools": tools,
    }


async def place(live: LabService, destination: str, assistant: dict[str, Any]) -> str:
    live.speech.stt.texts = ["Please enter my code."]
    status, reply = await live.post(
        "/calls/outbound", {"destination": destination, "assistant": assistant}
    )
    assert status == 200, reply
    return str(reply["call_id"])


async def test_send_dtmf_is_collected_by_the_party(live: LabService, llm: LlmStandIn) -> None:
    def presses(request: ChatRequest) -> str | ToolCalls:
        if any(m.get("role") == "tool" for m in request.messages):
            return "Done."
        return ToolCalls((("send_dtmf", {"digits": "47w2W1#"}),))  # uuid_send_dtmf's pauses

    llm.reply = presses
    before = await live.channels()
    call_id = await place(live, DTMF_PARTY, assistant(llm, [{"type": "send_dtmf"}]))
    channel = await live.channel_of(call_id, within=10)
    second = await llm.wait_request(2, timeout=40)
    assert [m["content"] for m in second.messages if m["role"] == "tool"] == ["Pressed 47w2W1#."]
    parties = (await live.channels()) - before - {channel}
    assert len(parties) == 1, parties
    (party,) = parties
    digits: list[str] = []

    async def collected() -> bool:
        digits[:] = [await live.getvar(party, "lab_digits")]
        return digits[0] == "4721"

    await until(collected, 15)
    status, _ = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
    assert status == 200
    ended = await wait_recorded(live, call_id, within=20)  # the party's leg ends with it
    # The digits the assistant played are not taken for the caller's keypad.
    assert not [m for m in ended["messages"] if m["content"].startswith("Keypad:")]


async def test_transfer_call_ends_in_a_native_transfer(live: LabService, llm: LlmStandIn) -> None:
    llm.reply = ToolCalls((("transfer_call", {"destination": "sales"}),))
    tools = [{"type": "transfer_call", "destinations": ["sales"]}]
    call_id = await place(live, UTTERANCE, assistant(llm, tools))
    channel = await live.channel_of(call_id, within=10)
    ended = await live.wait_status(call_id, TERMINAL, within=40)
    assert (ended["status"], ended["end_reason"]) == ("ended", "transferred")
    assert ended["transferred_to"] == "sales"
    await live.fs.esl.api(f"uuid_kill {channel}")  # the caller is with sales now, not with us


async def test_end_call_hangs_up_the_party(live: LabService, llm: LlmStandIn) -> None:
    llm.reply = ToolCalls((("end_call", {}),), text="Goodbye.")
    before = await live.channels()
    call_id = await place(live, UTTERANCE, assistant(llm, [{"type": "end_call"}]))
    channel = await live.channel_of(call_id, within=10)
    parties: set[str] = set()

    async def party_listed() -> bool:
        # Polled: ``show channels`` lags the channels' events (``LabService.channel_of``), so
        # our leg may be listed before the party's (it failed so once, in a full run).
        parties.update((await live.channels()) - before - {channel})
        return bool(parties)

    await until(party_listed, 5)
    assert len(parties) == 1, parties  # the party's leg, bridged to ours
    # The model's end_call ends the call by itself, after its last words.
    ended = await wait_recorded(live, call_id, within=40)
    assert (ended["status"], ended["end_reason"]) == ("ended", "assistant-ended-call")
    assert "Goodbye." in live.speech.tts.texts
    # FreeSWITCH hung both legs up: none of the call's channels is left.
    await until(lambda: _gone(live, before), 10)
    # The transcript and the call's events show the model's call and its result.
    calls = [json.loads(m["content"]) for m in ended["messages"] if m["role"] == "tool_calls"]
    assert [[c["name"] for c in called] for called in calls] == [["end_call"]]
    assert "tool" in [m["role"] for m in ended["messages"]]
    event_roles = [e["data"]["role"] for e in ended["events"] if e["type"] == "transcript"]
    assert "tool_calls" in event_roles


async def _gone(live: LabService, before: set[str]) -> bool:
    """FreeSWITCH has no channel left that was not there before the call."""
    return not (await live.channels() - before)
