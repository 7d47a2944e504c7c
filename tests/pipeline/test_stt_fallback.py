"""An STT plan: a turn whose transcription failed is heard by the next entry, from the same
audio."""

from __future__ import annotations

import asyncio

import pytest

from voicedock.pipeline.dialogue.turn_engine import ConversationConfig, TurnEngine, TurnParts
from voicedock.pipeline.fallback_plans.plan import Entry, Switch
from voicedock.pipeline.fallback_plans.stt import SttPlan
from voicedock.pipeline.pools.provider_health import Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import ProviderConnectionError, Stt

from .fakes import FakeLlm, FakeSink, FakeStt, FakeTts
from .test_turn_engine import ENDPOINTING, speak, until

pytestmark = pytest.mark.unit

CLOUD, LOCAL = Endpoint("stt", "deepgram", model="nova-3"), Endpoint("stt", "offline")


class Hangs(FakeStt):
    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        self.calls.append(len(pcm))
        await asyncio.sleep(3600)
        return ""


def plan(first: Stt, second: Stt, switches: list[Switch]) -> SttPlan:
    entries: list[Entry[Stt]] = [Entry(CLOUD, first), Entry(LOCAL, second)]
    return SttPlan(entries, ProviderHealth(), switches.append, attempt_timeout_s=0.1)


async def test_a_dead_stream_leaves_the_turn_to_the_next_entry_with_the_same_audio() -> None:
    first = FakeStt()
    first.error = ProviderConnectionError("stream closed")
    second = FakeStt(["When do you open?"])
    switches: list[Switch] = []
    assert await plan(first, second, switches).transcribe(b"\x01\x00" * 800, 16000) == (
        "When do you open?"
    )
    assert (first.calls, second.calls) == ([1600], [1600])  # the same audio
    assert switches == [Switch("stt", CLOUD, LOCAL, "connection")]


async def test_a_transcription_that_never_comes_times_out_to_the_next_entry() -> None:
    switches: list[Switch] = []
    got = await plan(Hangs(), FakeStt(["Hello?"]), switches).transcribe(b"\x00\x00", 16000)
    assert got == "Hello?"
    assert [s.reason for s in switches] == ["timeout"]


async def test_the_callers_next_sentence_is_heard_after_the_primary_died() -> None:
    first = FakeStt(["Hi."])
    second = FakeStt(["I would like to book."])
    switches: list[Switch] = []
    llm = FakeLlm(["Hello.", "Sure."])
    async with TurnEngine(
        TurnParts(
            stt=plan(first, second, switches), llm=llm, tts=FakeTts(), sink=FakeSink(instant=True)
        ),
        ConversationConfig(endpointing=ENDPOINTING),
    ) as conv:
        speak(conv)
        await until(lambda: len(conv.transcript) == 2)
        first.error = ProviderConnectionError("stream closed")
        speak(conv)
        await until(lambda: len(conv.transcript) == 4)
        assert conv.end_reason is None
    assert [e.content for e in conv.transcript if e.role == "user"] == [
        "Hi.",
        "I would like to book.",
    ]
    assert llm.calls[1][-1].content == "I would like to book."
    assert [s.reason for s in switches] == ["connection"]
    # Each turn names the entry that heard it, and each message counts for it (usage).
    assert [turn.stt_provider for turn in conv.latencies] == ["deepgram/nova-3", "offline"]
    assert [e.provider for e in conv.transcript if e.role == "user"] == ["deepgram", "offline"]
