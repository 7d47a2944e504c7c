"""A TTS plan: a sentence whose voice failed is spoken by the next entry, and the call keeps
that voice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from voicedock.pipeline.dialogue.turn_engine import ConversationConfig, TurnEngine, TurnParts
from voicedock.pipeline.fallback_plans.plan import Entry, Switch
from voicedock.pipeline.fallback_plans.tts import TtsPlan
from voicedock.pipeline.pools.provider_health import Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import ProviderResponseError, Tts

from .fakes import FakeLlm, FakeSink, FakeStt, FakeTts
from .test_turn_engine import ENDPOINTING, speak, until

pytestmark = pytest.mark.unit

CLOUD, LOCAL = Endpoint("tts", "elevenlabs", model="eleven_flash"), Endpoint("tts", "piper")


class Silent(FakeTts):
    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.texts.append(text)
        await asyncio.sleep(3600)
        yield b""


def plan(first: Tts, second: Tts, switches: list[Switch]) -> TtsPlan:
    entries: list[Entry[Tts]] = [Entry(CLOUD, first), Entry(LOCAL, second)]
    return TtsPlan(entries, ProviderHealth(), switches.append, attempt_timeout_s=0.1)


async def audio(tts: Tts, text: str) -> bytes:
    return b"".join([pcm async for pcm in tts.synthesize(text)])


async def test_a_failed_voice_hands_the_sentence_to_the_next_and_the_call_keeps_it() -> None:
    first, second = FakeTts(8000), FakeTts(16000)
    first.error = ProviderResponseError("503")
    switches: list[Switch] = []
    voices = plan(first, second, switches)
    spoken = await audio(voices, "Hello.")
    assert len(spoken) == len(await audio(FakeTts(8000), "Hello."))  # at the plan's rate
    first.error = None  # back in service: this call keeps its new voice all the same
    await audio(voices, "How can I help?")
    assert (first.texts, second.texts) == (["Hello."], ["Hello.", "How can I help?"])
    assert switches == [Switch("tts", CLOUD, LOCAL, "bad-response")]


async def test_a_voice_with_no_audio_in_time_is_left_for_the_next() -> None:
    switches: list[Switch] = []
    spoken = await audio(plan(Silent(), FakeTts(), switches), "Hello.")
    assert spoken
    assert [s.reason for s in switches] == ["timeout"]


async def test_speech_continues_in_the_fallback_voice_when_the_voice_fails_mid_call() -> None:
    first, second = FakeTts(), FakeTts()
    switches: list[Switch] = []
    async with TurnEngine(
        TurnParts(
            stt=FakeStt(["Hi.", "When do you open?"]),
            llm=FakeLlm(["Hello there.", "We open at nine."]),
            tts=plan(first, second, switches),
            sink=FakeSink(instant=True),
        ),
        ConversationConfig(endpointing=ENDPOINTING),
    ) as conv:
        speak(conv)
        await until(lambda: len(conv.transcript) == 2)
        first.error = ProviderResponseError("503")
        speak(conv)
        await until(lambda: len(conv.transcript) == 4)
        assert conv.end_reason is None
    assert conv.transcript[3].content == "We open at nine."
    assert not conv.transcript[3].interrupted
    assert second.texts == ["We open at nine."]
    assert [s.reason for s in switches] == ["bad-response"]
    # Each turn names the voice that spoke it, and each message counts for it (usage).
    assert [turn.tts_provider for turn in conv.latencies] == ["elevenlabs/eleven_flash", "piper"]
    assert [e.provider for e in conv.transcript if e.role == "assistant"] == [
        "elevenlabs",
        "piper",
    ]
