"""Ending a call (``pipeline/dialogue/ending.py``): the grace after an end-call, the silence
timeout's message, a final message that fails, the first reason standing."""

from __future__ import annotations

import asyncio

import pytest

from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.ending import (
    CLOSED,
    END_CALL_COMMAND,
    PROVIDER_ERROR,
    CallEnd,
)
from voicedock.pipeline.hearing.endpointing import SILENCE_TIMEOUT
from voicedock.pipeline.providers.base import ProviderError

pytestmark = pytest.mark.unit


class Ending:
    def __init__(self, config: ConversationConfig) -> None:
        self.end = CallEnd(config)
        self.steps: list[str] = []

    async def quiet(self) -> None:
        self.steps.append("quiet")

    async def say(self, text: str) -> None:
        self.steps.append(f"say {text}")


async def test_end_call_lets_pending_speech_finish_within_the_grace() -> None:
    ending = Ending(ConversationConfig(end_call_grace_s=5.0))
    speaking = asyncio.create_task(asyncio.sleep(0.05))
    await ending.end.finish(
        END_CALL_COMMAND, "Bye.", pending=[speaking], quiet=ending.quiet, say=ending.say
    )
    assert speaking.done()
    assert ending.steps == ["quiet", "say Bye."]
    assert await ending.end.wait() == END_CALL_COMMAND


async def test_a_provider_end_does_not_wait_for_pending_speech() -> None:
    ending = Ending(ConversationConfig(end_call_grace_s=5.0))
    speaking = asyncio.create_task(asyncio.sleep(10))
    try:
        async with asyncio.timeout(1):
            await ending.end.finish(
                PROVIDER_ERROR, "Sorry.", pending=[speaking], quiet=ending.quiet, say=ending.say
            )
    finally:
        speaking.cancel()
    assert ending.end.reason == PROVIDER_ERROR


async def test_the_silence_timeout_says_its_own_message() -> None:
    ending = Ending(ConversationConfig(silence_timeout_message="Goodbye for now."))
    await ending.end.finish(SILENCE_TIMEOUT, None, pending=(), quiet=ending.quiet, say=ending.say)
    assert ending.steps == ["quiet", "say Goodbye for now."]


async def test_a_final_message_that_fails_still_ends_the_call() -> None:
    ending = Ending(ConversationConfig(fallback_timeout_s=0.1))

    async def failing(text: str) -> None:
        raise ProviderError("tts down")

    await ending.end.finish(PROVIDER_ERROR, "Sorry.", pending=(), quiet=ending.quiet, say=failing)
    assert ending.steps == ["quiet", "quiet"]  # what was queued of it is cut too
    assert await ending.end.wait() == PROVIDER_ERROR


async def test_close_is_once_and_an_earlier_reason_stands() -> None:
    end = CallEnd(ConversationConfig())
    assert not end.over
    assert end.close()
    assert not end.close()
    assert end.over
    end.end("internal-error")
    end.end(CLOSED)
    assert await end.wait() == "internal-error"
