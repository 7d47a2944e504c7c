"""The assistant's audio (``pipeline/dialogue/assistant_audio.py``): what the caller heard of a
message cut while its next sentence was still being synthesized."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pipeline.fakes import FakeSink, FakeTts
from voicedock.pipeline.dialogue.assistant_audio import AssistantAudio
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.events import CallEvents
from voicedock.pipeline.speaking.output import Speech

pytestmark = pytest.mark.unit


async def test_a_cut_message_keeps_only_the_sentences_whose_audio_was_queued() -> None:
    release = asyncio.Event()

    class StallingTts(FakeTts):
        async def synthesize(self, text: str) -> AsyncIterator[bytes]:
            if text.startswith("Second"):
                await release.wait()
            async for pcm in super().synthesize(text):
                yield pcm

    sink = FakeSink(instant=True)
    heard: list[bytes] = []
    speaker = AssistantAudio(
        StallingTts(), sink, ConversationConfig(), lambda: 1.0, CallEvents(), on_audio=heard.append
    )
    speech = Speech()
    saying = asyncio.create_task(speaker.speak(speech, "First part. Second part."))
    async with asyncio.timeout(2):
        while not heard:
            await asyncio.sleep(0.005)
    assert speaker.audible
    await asyncio.sleep(0.02)  # now waiting for the second sentence's audio
    saying.cancel()
    assert await speaker.cut(speech) == "First part."
    assert not speaker.audible
    assert speaker.speeches == []
