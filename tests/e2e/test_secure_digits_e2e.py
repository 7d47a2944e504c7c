"""Secure keypad entry on a real call: REST → engine → lab Asterisk → the card party, which
keys 16 digits and # (each an RFC 4733 event, DTMF_END on voicedock's media leg, and its tone
in the audio) while the model's ``collect_secure_digits`` tool holds the call in secure mode.

The organization's server (``fakes.tool_server``, checking the signature) receives the digits
in the signed ``tool-calls`` request; the model (``fakes.llm_standin``) reads only the
server's answer. None of the digits is in what the model received, the stored call (its
messages, events), its SSE stream or the service's log; the recording, decoded by a DTMF
detector (``media/dtmf_tones.py``), holds only the in-band 9 the party played before the
entry: the tones of the card were silenced. Speech goes through ``SpeechFakes`` (no models).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from e2e.audio_helpers import wait_transcript
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from e2e.test_events_e2e import sse_messages
from fakes.llm_standin import ChatRequest, LlmStandIn, ToolCalls
from fakes.tool_server import Answer, ToolServer
from fakes.world import ACME
from media.dtmf_tones import detect_dtmf
from pbx.freeswitch.live_service import speech_fakes
from voicedock.config import Settings, WebhookEndpointSettings
from voicedock.domain.webhooks import generate_secret
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(120)]

CARD_PARTY = "+31612345697"  # a 9 tone at 1 s; from 6 s keys CARD and # (events and tones)
CARD = "4929386172530418"
BEFORE_THE_CARD_S = 4.0  # in the recording: the party's 9 is before, its card's tones after
SECRET = generate_secret()
ACCEPTED = "payment accepted"
THANKS = "Thank you, your payment went through."
PROMPT = "Please key in your card number, then press hash."
TOOL = {
    "type": "collect_secure_digits",
    "name": "card_number",
    "prompt": PROMPT,
    "min_digits": 15,
    "max_digits": 19,
    "digit_timeout_seconds": 10,
}


def model(request: ChatRequest) -> str | ToolCalls:
    """Asks for the card once; with the tool's result, thanks the caller."""
    if any(m.get("role") == "tool" for m in request.messages):
        return THANKS
    return ToolCalls((("card_number", {"length": 16}),))


def secure_settings(settings: Settings, llm: LlmStandIn, server: ToolServer, tmp: Path) -> None:
    settings.egress.allow_loopback = True  # the stand-in and the organization's server
    settings.recordings.directory = str(tmp / "recordings")
    settings.webhooks.endpoints = [
        WebhookEndpointSettings(
            name="payments",
            organization=ACME,
            url=server.url,
            secret=SECRET,
            event_types=["tool-calls"],
        )
    ]


def assistant(llm: LlmStandIn) -> dict[str, Any]:
    return {
        "first_message": "Hello.",
        "record": True,
        "tools": [TOOL],
        "llm_config": {
            "provider": "openai-compatible",
            "base_url": llm.base_url,
            "api_key": "sk-lab",
            "model": "lab-model",
        },
    }


async def secure_digits_call(
    live: LiveService, llm: LlmStandIn, server: ToolServer, destination: str
) -> dict[str, Any]:
    """The call to the card party; what reached the server, the model and the call's record
    checked; the ended call returned."""
    status, reply = await live.post(
        "/calls/outbound", {"destination": destination, "assistant": assistant(llm)}
    )
    assert status == 200, reply
    call_id = str(reply["call_id"])
    await live.wait_status(call_id, ("in-progress",))
    await asyncio.sleep(2.5)  # after the party's in-band 9 (1-1.4 s), before its keys (6 s)
    await control(
        live,
        call_id,
        {"type": "inject-context", "content": "Take the payment.", "trigger_response": True},
    )
    # The organization's server: the digits, in a request whose signature it checked.
    try:
        request = await server.wait_request(1, timeout=40)
    except TimeoutError:
        told = [(m["role"], m["content"]) for r in llm.requests for m in r.messages]
        raise AssertionError(f"no tool-calls request; the model was told {told}") from None
    assert server.refused == 0
    assert request["type"] == "tool-calls"
    assert request["call_id"] == call_id
    tool_call = request["data"]["tool_call"]
    assert tool_call["name"] == "card_number"
    # The model asked for 16 digits: the 16th ends the entry (the # after it is swallowed).
    assert tool_call["arguments"] == {"length": 16, "digits": CARD, "ended_by": "length"}
    # The model: its tool call, then the server's answer as the result, never the digits.
    second = await llm.wait_request(2, timeout=30)
    results = [m["content"] for m in second.messages if m["role"] == "tool"]
    assert results == [ACCEPTED]
    await wait_transcript(live, call_id, lambda m: m["content"] == THANKS, within=20)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=30)
    assert ended["status"] == "ended"
    for sent in llm.requests:
        raw = json.dumps(sent.body)
        assert CARD not in raw
        assert "Keypad" not in raw  # the keypad's own turns were suspended
    # The stored call: messages and events, with the prompt and the tool's answer only.
    stored = json.dumps(ended)
    assert CARD not in stored
    assert CARD[:8] not in stored
    said = [(m["role"], m["content"]) for m in ended["messages"]]
    assert ("assistant", PROMPT) in said
    assert ("assistant", THANKS) in said
    assert not any(role == "user" for role, _ in said)
    # The call's SSE stream replays the same, without the digits.
    stream = await live.client.get(f"/calls/{call_id}/events", headers=live.auth())
    assert stream.status == 200
    text = (await stream.read()).decode()
    events, _ = sse_messages(text)
    assert any(e.get("event") == "transcript" for e in events)
    assert CARD not in text
    assert CARD[:8] not in text
    # The recording: the party's in-band 9 before the entry is there (the detector hears
    # this recording's tones); none of the card's tones is.
    resp = await live.client.get(ended["recording_url"], headers=live.auth())
    assert resp.status == 200
    data, rate = soundfile.read(io.BytesIO(await resp.read()), dtype="int16")
    caller_keys = detect_dtmf(np.ascontiguousarray(data[:, 0]), rate)
    assistant_keys = detect_dtmf(np.ascontiguousarray(data[:, 1]), rate)
    # The 9 (at 1-1.4 s; a gap in the leg's frames may split it in two), nothing from 6 s on.
    assert caller_keys, "the detector heard no tone in this recording"
    assert all(k.key == "9" and k.at_s < BEFORE_THE_CARD_S for k in caller_keys), caller_keys
    assert assistant_keys == [], assistant_keys
    return ended


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn(reply=model) as standin:
        yield standin


@pytest.fixture
async def server() -> AsyncIterator[ToolServer]:
    async with ToolServer(SECRET, {"card_number": Answer({"result": ACCEPTED})}) as running:
        yield running


async def test_secure_digits_reach_the_organizations_server_alone(
    lab: LabAsterisk,
    tmp_path: Path,
    llm: LlmStandIn,
    server: ToolServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with speech_fakes() as (name, _fakes):
        settings = service_settings(lab, tmp_path / "secure.db", "ari")
        settings.speech.stt = settings.speech.tts = name
        secure_settings(settings, llm, server, tmp_path)
        live = await serve(settings)
        try:
            await secure_digits_call(live, llm, server, CARD_PARTY)
        finally:
            await live.client.close()
    assert caplog.records  # the log was captured, at every level
    assert CARD not in caplog.text
    assert CARD[:8] not in caplog.text
