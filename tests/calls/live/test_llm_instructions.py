"""What the LLM receives on a placed call: the assistant's own instructions, its provider.

Each test places a call the way a client does (``POST /calls/outbound`` bodies through the
engine, in reference, transient or hybrid mode), the fake PBX answers it over the in-process
chan_websocket endpoint, the caller speaks, and the OpenAI-compatible stand-in
(``fakes.llm_standin``) tells what reached the far end: model, system prompt, earlier turns,
the caller's words and the key.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from fakes.calls import call_finished, calls_of, place_outbound
from fakes.llm_standin import ChatRequest, LlmStandIn
from fakes.memory_store import MemoryStore
from fakes.pbx import MediaFakePbx
from fakes.requests import outbound_request
from fakes.world import ACME, DESTINATION, SUPPORT_ID, org_id
from media.fake_asterisk import FakeAsterisk
from pipeline.fakes import FakeStt, FakeTts
from pipeline.synth import silence, voiced
from voicedock.calls.control import EndCall
from voicedock.calls.engine import CallEngine
from voicedock.calls.runner import CallRunner
from voicedock.config import Settings
from voicedock.errors import BadRequest
from voicedock.media.codecs import ulaw_encode
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.providers.registry import stt_registry, tts_registry

pytestmark = pytest.mark.unit

ACME_ID = org_id(ACME)
OPERATOR_KEY = "sk-operator-test"
MISTRAL_KEY = "mistral-operator-test"
FAKE = "llm-instructions-test-fake"  # the STT/TTS engine name of these tests
INSTRUCTIONS = "You are Ada, the booking assistant of the Riverside dental clinic."
CALLER_SAYS = "I would like to book an appointment on Monday."
FRAME = 160  # 20 ms of µ-law at 8 kHz
SPEECH = {"stt_config": {"provider": FAKE}, "tts_config": {"provider": FAKE}}


@dataclass
class World:
    engine: CallEngine
    runner: CallRunner
    pbx: MediaFakePbx
    fake: FakeAsterisk
    llm: LlmStandIn
    stt: FakeStt

    async def place(self, body: dict[str, Any]) -> str:
        request = outbound_request({"destination": DESTINATION, **body})
        result = await place_outbound(self.engine, ACME_ID, request)
        return str(result.body["call_id"])

    async def converse(self, body: dict[str, Any]) -> ChatRequest:
        """Place the call, answer it, say ``CALLER_SAYS``; the LLM's first request."""
        self.stt.texts = [CALLER_SAYS]
        call_id = await self.place(body)
        await self.pbx.answer(call_id)
        await self.caller_speaks()
        request = await self.llm.wait_request(timeout=5)
        await self.engine.control.run(ACME_ID, call_id, EndCall(None))
        async with asyncio.timeout(5):
            await call_finished(self.runner, call_id)
        return request

    async def caller_speaks(self) -> None:
        """After a greeting was played (speaking over it would cut it)."""
        async with asyncio.timeout(5):
            while not self.fake.channels:
                await asyncio.sleep(0.005)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                while not self.fake.channel().played:
                    await asyncio.sleep(0.005)
        await asyncio.sleep(0.2)
        wire = ulaw_encode(voiced(600) + silence(500))
        ws = self.fake.channel().ws
        for start in range(0, len(wire) - FRAME + 1, FRAME):
            await ws.send_bytes(wire[start : start + FRAME])
            await asyncio.sleep(0.001)


@pytest.fixture
async def world(store: MemoryStore, settings: Settings) -> AsyncIterator[World]:
    stt = FakeStt()
    stt_registry.register(FAKE, lambda _config, _e: stt)
    tts_registry.register(FAKE, lambda _config, _e: FakeTts(8000, ms_per_char=1))
    settings.speech.stt = settings.speech.tts = FAKE
    # The stand-in LLM an assistant may name runs on loopback, as a local model would.
    settings.egress.allowed_networks = ["127.0.0.1/32"]
    conversation = ConversationConfig(
        endpointing=EndpointingConfig(
            end_silence_ms=300, silence_timeout_ms=None, max_duration_ms=None
        )
    )
    try:
        async with LlmStandIn(reply="Monday at nine works.") as llm:
            settings.speech.openai_base_url = llm.base_url
            settings.speech.openai_api_key = OPERATOR_KEY
            settings.speech.mistral_base_url = llm.base_url
            settings.speech.mistral_api_key = MISTRAL_KEY
            async with FakeAsterisk(send_audio=False) as fake:
                pbx = MediaFakePbx(fake)
                engine, runner = calls_of(
                    store, pbx, settings, conversation=conversation, close_timeout=5
                )
                async with runner:
                    await pbx.start(runner.events.handle_pbx_event)
                    yield World(engine, runner, pbx, fake, llm, stt)
    finally:
        stt_registry._factories.pop(FAKE, None)
        tts_registry._factories.pop(FAKE, None)


async def test_transient_llm_config_messages_are_the_instructions(world: World) -> None:
    assistant = {
        "first_message": "Riverside dental clinic, Ada speaking.",
        "llm_config": {
            "provider": "openai",
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": "I called yesterday about a filling."},
                {"role": "assistant", "content": "Yes, I remember your call."},
            ],
        },
        **SPEECH,
    }
    request = await world.converse({"assistant": assistant})
    assert request.path == "/v1/chat/completions"
    assert request.model == "gpt-4o"
    assert request.stream
    assert request.authorization == f"Bearer {OPERATOR_KEY}"
    assert request.system_prompt is not None
    assert request.system_prompt.startswith(INSTRUCTIONS)
    assert "helpful phone assistant" not in request.system_prompt  # not the built-in default
    # Earlier turns, then the call's own: the greeting and what the caller said.
    assert [(m["role"], m["content"]) for m in request.messages[1:]] == [
        ("user", "I called yesterday about a filling."),
        ("assistant", "Yes, I remember your call."),
        ("assistant", "Riverside dental clinic, Ada speaking."),
        ("user", CALLER_SAYS),
    ]


async def test_top_level_provider_openai_chooses_the_llm(world: World) -> None:
    assistant = {
        "provider": "openai",
        "system_prompt": INSTRUCTIONS,
        "llm_config": {"messages": [{"role": "system", "content": "Answer in one sentence."}]},
        **SPEECH,
    }
    request = await world.converse({"assistant": assistant, "context": "Caller: Margaret."})
    assert request.model == "gpt-4o-mini"  # the default model of provider openai
    assert request.authorization == f"Bearer {OPERATOR_KEY}"
    assert request.system_prompt is not None
    prompt = request.system_prompt
    assert prompt.index(INSTRUCTIONS) < prompt.index("Answer in one sentence.")
    assert "Margaret" in prompt
    assert request.last_user_text == CALLER_SAYS


async def test_top_level_provider_without_any_llm_config(world: World) -> None:
    request = await world.converse({"assistant": {"provider": "openai", **SPEECH}})
    assert request.model == "gpt-4o-mini"
    assert request.last_user_text == CALLER_SAYS


async def test_mistral_goes_to_mistral_with_its_key(world: World) -> None:
    assistant = {
        "provider": "mistral",
        "llm_config": {"messages": [{"role": "system", "content": INSTRUCTIONS}]},
        **SPEECH,
    }
    request = await world.converse({"assistant": assistant})
    assert request.model == "mistral-small-latest"
    assert request.authorization == f"Bearer {MISTRAL_KEY}"
    assert request.system_prompt == INSTRUCTIONS


async def test_hybrid_override_of_llm_config_messages(world: World, settings: Settings) -> None:
    settings.speech.llm = "openai"  # the operator's default LLM for offline-mode assistants
    override = {
        "llm_config": {"messages": [{"role": "system", "content": INSTRUCTIONS}]},
        "first_message": "Hello Jan.",
    }
    request = await world.converse({"assistant_id": SUPPORT_ID, "assistant_override": override})
    assert request.system_prompt == INSTRUCTIONS
    assert request.model == "gpt-4o-mini"
    assert request.texts("assistant") == ["Hello Jan."]
    assert request.last_user_text == CALLER_SAYS


async def test_reference_mode_keeps_the_configured_system_prompt(
    world: World, settings: Settings
) -> None:
    settings.speech.llm = "openai"
    request = await world.converse({"assistant_id": SUPPORT_ID})
    assert request.system_prompt == ConversationConfig().system_prompt  # Support has none
    assert request.texts("assistant") == ["Hi!"]


async def test_an_assistant_base_url_never_gets_the_operator_key(
    world: World, settings: Settings
) -> None:
    assistant = {
        "llm_config": {"provider": "openai", "base_url": world.llm.base_url + "/"},
        **SPEECH,
    }
    settings.speech.openai_base_url = "http://127.0.0.1:9/v1"  # the operator's is elsewhere
    request = await world.converse({"assistant": assistant})
    assert request.authorization is None


@pytest.mark.parametrize(
    ("assistant", "message"),
    [
        (
            {"provider": "openai", **SPEECH, "llm_config": {"provider": "mistral"}},
            "contradicts provider",
        ),
        ({"llm_config": {"provider": "gpt"}}, "llm_config.provider 'gpt' is not one of"),
        ({"stt_config": {"provider": "whisperx"}}, "stt_config.provider 'whisperx'"),
        ({"provider": "mistral", "stt_config": {}}, "requires both stt_config and tts_config"),
    ],
)
async def test_unknown_or_contradicting_providers_are_refused_when_placed(
    world: World, assistant: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        await world.place({"assistant": assistant})
    assert world.pbx.originated == []
