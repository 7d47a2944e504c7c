"""Live listen, whisper and take over on a real call through the lab Asterisk.

REST places a call to the lab's speaking party (it says its appointment line 3 s after
answering); a listener connects to ``GET /calls/{id}/listen`` with the organization's key and
decodes the frames of both sides: the party's side carries speech (webrtcvad, as the suite
measures what a party heard). A supervisor's whisper (``inject-context``, ``source
supervisor``) reaches the model, the OpenAI-compatible stand-in, as a supervisor's note and is
stored in the transcript as role ``supervisor``; "take over" (a warm transfer to the
supervisor's extension, the lab's ``warmaccept``, who accepts with a key) ends the call
``transferred``, the PBX bridging the caller to that extension, and ends the listen stream.
``tests/freeswitch_lab/test_listen.py`` runs the same call on the lab FreeSWITCH.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from e2e.audio_helpers import UTTERANCE_PARTY, speech_seconds
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from fakes.llm_standin import ChatRequest, LlmStandIn
from fakes.world import ACME
from media.listen_frames import parse_frame
from pbx.freeswitch.live_service import speech_fakes
from voicedock.api.api_keys import issue_api_key
from voicedock.api.authentication import hash_key
from voicedock.config import Settings
from voicedock.domain.records import KeyScope
from voicedock.media.listen_tap import ASSISTANT, CALLER
from voicedock.pipeline.frames import supervisor_note
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(120)]

SUPERVISOR_EXTENSION = "warmaccept"  # answers, accepts a warm transfer with DTMF 1
WHISPER = "Offer the caller an appointment on Tuesday at nine."
REPLY = "We also have Tuesday at nine, would that suit you?"
TERMINAL = ("ended", "failed")


def assistant(llm: LlmStandIn) -> dict[str, Any]:
    return {
        "first_message": "Hello.",
        "llm_config": {
            "provider": "openai-compatible",
            "base_url": llm.base_url,
            "api_key": "sk-lab",
            "model": "lab-model",
        },
    }


async def connect(live: LiveService, call_id: str) -> aiohttp.ClientWebSocketResponse:
    """The listen websocket, once the call's audio has started on the node (409 until then)."""
    url = f"/calls/{call_id}/listen"
    async with asyncio.timeout(15):
        while True:
            try:
                return await live.client.ws_connect(url, headers=live.auth())
            except aiohttp.WSServerHandshakeError as refused:
                if refused.status != 409:  # only "not started yet" is worth waiting for
                    raise
                await asyncio.sleep(0.1)


async def collect_party_speech(
    ws: aiohttp.ClientWebSocketResponse, rate: int, within: float = 15.0
) -> list[tuple[int, int, int, np.ndarray[Any, Any]]]:
    """The frames that arrive until the party's side holds over a second of speech (webrtcvad
    on the decoded frames) and the assistant's side a frame, or ``within`` seconds passed."""
    frames: list[tuple[int, int, int, np.ndarray[Any, Any]]] = []
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while (left := until - loop.time()) > 0:
        try:
            message = await ws.receive(timeout=left)
        except TimeoutError:
            break
        assert message.type is aiohttp.WSMsgType.BINARY, message
        frames.append(parse_frame(message.data))
        heard_both = len(frames) % 50 == 0 and any(f[0] == ASSISTANT for f in frames)
        if heard_both and speech_seconds(caller_pcm(frames), rate) > 1.0:
            break
    return frames


def caller_pcm(frames: list[tuple[int, int, int, np.ndarray[Any, Any]]]) -> bytes:
    return b"".join(f[3].astype("<i2").tobytes() for f in frames if f[0] == CALLER)


async def supervisor_request(llm: LlmStandIn, within: float = 20.0) -> ChatRequest:
    """The model's request that carries the whisper."""
    note = supervisor_note(WHISPER)
    async with asyncio.timeout(within):
        while True:
            for request in llm.requests:
                if any(note in text for text in request.texts("system")):
                    return request
            await asyncio.sleep(0.05)


async def the_end(ws: aiohttp.ClientWebSocketResponse, within: float = 20.0) -> dict[str, Any]:
    """What the stream says last, once the call has ended."""
    async with asyncio.timeout(within):
        while (message := await ws.receive()).type is aiohttp.WSMsgType.BINARY:
            pass
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return dict(message.json())


async def listen_whisper_take_over(live: LiveService, llm: LlmStandIn) -> str:
    """The whole supervisor's path on one lab call; returns the call's id (transferred)."""
    status, reply = await live.post(
        "/calls/outbound", {"destination": UTTERANCE_PARTY, "assistant": assistant(llm)}
    )
    assert status == 200, reply
    call_id = str(reply["call_id"])
    await live.wait_status(call_id, ("in-progress",), within=20)
    ws = await connect(live, call_id)
    try:
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello"
        assert (hello["call_id"], hello["encoding"]) == (call_id, "s16le")
        assert hello["channels"] == ["caller", "assistant"]
        rate = int(hello["sample_rate"])
        # The assistant speaks while we listen (a FreeSWITCH leg sends nothing between its
        # words: the greeting may be over already); the party speaks 3 s after answering.
        await control(live, call_id, {"type": "say", "content": "One moment please."})
        frames = await collect_party_speech(ws, rate)
        caller = [f for f in frames if f[0] == CALLER]
        assistant_side = [f for f in frames if f[0] == ASSISTANT]
        assert assistant_side, "no frame of the assistant's side"
        assert all(len(f[3]) == rate // 50 for f in frames)  # 20 ms frames at the hello's rate
        # The party's words, decoded from the stream.
        assert speech_seconds(caller_pcm(frames), rate) > 1.0, len(caller)

        whisper = {
            "type": "inject-context",
            "content": WHISPER,
            "trigger_response": True,
            "source": "supervisor",
        }
        await control(live, call_id, whisper)
        request = await supervisor_request(llm)
        assert WHISPER not in request.texts("user")  # the model knows it is not the caller

        take_over = {"type": "transfer", "destination": SUPERVISOR_EXTENSION, "mode": "warm"}
        await control(live, call_id, take_over)
        ended = await live.wait_status(call_id, TERMINAL, within=45)
        assert (ended["status"], ended["end_reason"]) == ("ended", "transferred"), ended
        assert ended["transferred_to"] == SUPERVISOR_EXTENSION
        end = await the_end(ws)
        assert end["type"] == "end"
        assert end["reason"] == "call-ended"
    finally:
        await ws.close()
    record = await wait_recorded(live, call_id, within=20)
    said = [(m["role"], m["content"]) for m in record["messages"]]
    assert ("supervisor", WHISPER) in said, said
    assert ("user", WHISPER) not in said
    return call_id


async def bridged_to(live: LiveService, call_id: str, extension: str) -> bool:
    """The caller's channel shares a bridge with a channel of ``extension`` at Asterisk."""
    channels = {c.id: c.name for c in await live.pbx.ari.list_channels()}
    bridges = await live.pbx.ari.request("GET", "/bridges")
    for bridge in bridges or []:
        members = [str(c) for c in bridge.get("channels", [])]
        if call_id in members and any(extension in channels.get(c, "") for c in members):
            return True
    return False


def supervised_settings(lab: LabAsterisk, database: Path, speech: str) -> Settings:
    """The service on the lab Asterisk with the speech stand-ins ``speech``, the stand-in LLM
    on loopback and the supervisor's extension (a warm transfer's internal target)."""
    settings = service_settings(lab, database, "ari")
    settings.speech.stt = settings.speech.tts = speech
    settings.egress.allow_loopback = True  # the stand-in LLM is on loopback
    settings.policy.internal_targets = ["warm*"]
    settings.listen.supervisor_extension = SUPERVISOR_EXTENSION
    return settings


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn(reply=REPLY) as standin:
        yield standin


async def test_a_supervisor_listens_whispers_and_takes_the_call_over(
    lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn
) -> None:
    async with speech_fakes() as (name, _fakes):
        live = await serve(supervised_settings(lab, tmp_path / "listen.db", name))
        try:
            call_id = await listen_whisper_take_over(live, llm)
            # Asterisk bridged the caller to the supervisor's extension (warmaccept), who
            # stays on the line for a while after accepting.
            async with asyncio.timeout(10):
                while not await bridged_to(live, call_id, SUPERVISOR_EXTENSION):
                    await asyncio.sleep(0.2)
            await live.pbx.ari.hangup_channel(call_id)
            await audited_once(live, call_id)
        finally:
            await live.client.close()


async def audited_once(live: LiveService, call_id: str) -> None:
    """The listen, the whisper and the take over are each once in the organization's audit
    trail, with the key that did them as the actor."""
    admin, org = await issue_api_key(live.service.store, ACME, "auditor", KeyScope.ADMIN)
    keys = await live.service.store.list_api_keys(org.id)
    actor = next(k.id for k in keys if k.key_hash == hash_key(live.key))
    resp = await live.client.get(
        f"/audit-events?resource_id={call_id}", headers={"Authorization": f"Bearer {admin}"}
    )
    assert resp.status == 200, await resp.text()
    events = (await resp.json())["audit_events"]
    assert sorted(e["action"] for e in events) == ["call.listen", "call.take_over", "call.whisper"]
    assert {e["actor"] for e in events} == {actor}
