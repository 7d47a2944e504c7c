"""The parts both dialogue engines compose (``pipeline/dialogue/``), each on its own: the
transcript keeper's spoken order, the keypad input's timeout and wall times, the call's end
(grace, final message, fallback), the first message, the tool calls and their filler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from pipeline.fakes import FakeSink, FakeTts
from voicedock.aio import Supervisor
from voicedock.pipeline.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.ending import (
    CLOSED,
    END_CALL_COMMAND,
    PROVIDER_ERROR,
    REFUSED,
    CallEnd,
)
from voicedock.pipeline.dialogue.first_message import opening
from voicedock.pipeline.dialogue.keypad_input import KeypadInput
from voicedock.pipeline.dialogue.speaker import Speaker
from voicedock.pipeline.dialogue.tool_calls import ENDING, ToolCalls
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.endpointing import SILENCE_TIMEOUT
from voicedock.pipeline.frames import EndCall, Say, ToolCall, TranscriptEntry, TranscriptRole
from voicedock.pipeline.keypad import KeypadEntry, KeypadPlan
from voicedock.pipeline.output import Speech
from voicedock.pipeline.providers.base import ProviderError
from voicedock.pipeline.tools import ToolResult

pytestmark = pytest.mark.unit


def said(role: TranscriptRole, text: str, started: float) -> TranscriptEntry:
    return TranscriptEntry(role, text, started, started + 1)


# ── the transcript ───────────────────────────────────────────────────────────────────────
def test_a_message_waits_for_an_earlier_turn_still_open() -> None:
    seen: list[str] = []
    open_since: list[float] = [5.0]  # a caller's turn open since t=5
    keeper = TranscriptKeeper(
        lambda e: seen.append(e.content), lambda: min(open_since, default=None)
    )
    keeper.add(said("assistant", "later", 7.0))
    assert keeper.entries[0].content == "later"
    assert seen == []
    assert keeper.holding
    keeper.add(said("user", "earlier", 5.0))  # the open turn's words, final now
    open_since.clear()
    keeper.report()
    assert seen == ["earlier", "later"]  # spoken order, each once
    assert [e.content for e in keeper.entries] == ["earlier", "later"]


def test_without_open_turns_each_message_is_handed_on_as_it_comes() -> None:
    seen: list[str] = []
    keeper = TranscriptKeeper(lambda e: seen.append(e.content))
    keeper.add(said("assistant", "reply", 7.0))
    keeper.add(said("user", "late words", 5.0))
    assert seen == ["reply", "late words"]
    assert [e.content for e in keeper.entries] == ["reply", "late words"]  # as they came


def test_everything_is_handed_on_once_the_call_is_over() -> None:
    seen: list[str] = []
    keeper = TranscriptKeeper(lambda e: seen.append(e.content), lambda: 1.0)
    keeper.add(said("assistant", "held", 3.0))
    keeper.report(everything=True)
    assert seen == ["held"]
    assert not keeper.holding


# ── the keypad ───────────────────────────────────────────────────────────────────────────
async def test_an_open_entry_comes_due_after_its_timeout() -> None:
    due: list[float] = []
    keypad = KeypadInput(KeypadPlan(timeout_s=0.5, terminator="#"), lambda: 1000.0, due.append)
    assert keypad.press("1") is None
    assert keypad.press("2") is None  # moves the deadline
    assert keypad.started_at is not None
    await asyncio.sleep(0.7)
    (deadline,) = due  # the first key's timer was replaced by the second's
    keys = keypad.expire(deadline)
    assert keys is not None
    assert keys.digits == "12"
    assert keypad.started_at is None


async def test_a_complete_entry_stops_its_timer_and_has_wall_times() -> None:
    due: list[float] = []
    keypad = KeypadInput(KeypadPlan(timeout_s=0.2, terminator="#"), lambda: 1000.0, due.append)
    keypad.press("4")
    keys = keypad.press("#")
    assert keys is not None
    assert keys.text == "Keypad: 4#"
    await asyncio.sleep(0.3)
    assert due == []  # no timeout for an entry already complete
    entry = keypad.entry(keys)
    assert (entry.role, entry.content) == ("user", "Keypad: 4#")
    assert 999.0 < entry.started_at <= entry.ended_at <= 1000.0


async def test_flush_ends_the_open_entry_and_its_timer() -> None:
    due: list[float] = []
    keypad = KeypadInput(KeypadPlan(timeout_s=0.2), lambda: 50.0, due.append)
    keypad.press("9")
    keys = keypad.flush()
    assert isinstance(keys, KeypadEntry)
    assert keys.digits == "9"
    assert keypad.flush() is None
    await asyncio.sleep(0.3)
    assert due == []


# ── the first message ────────────────────────────────────────────────────────────────────
def test_the_first_message_is_a_say_or_a_refusal() -> None:
    assert opening(ConversationConfig()) is None
    assert opening(ConversationConfig(first_message="Hello.")) == Say("Hello.")
    refused = ConversationConfig(first_message="Closed.", hang_up_after_first_message=True)
    assert opening(refused) == EndCall(REFUSED, "Closed.")


# ── the end ──────────────────────────────────────────────────────────────────────────────
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


# ── tool calls ───────────────────────────────────────────────────────────────────────────
class SlowTool:
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.ran: list[str] = []

    async def run(self, call: ToolCall) -> ToolResult:
        self.ran.append(call.name)
        await asyncio.sleep(self.delay_s)
        return ToolResult("done")


async def test_a_slow_tool_brings_the_filler_and_end_call_is_the_dialogues() -> None:
    executor = SlowTool(0.2)
    config = ConversationConfig(tool_filler_message="Hold on.", tool_filler_delay_s=0.05)
    async with Supervisor("test", logging.getLogger("test")) as tasks:
        tools = ToolCalls(executor, tasks, config)
        slow = tools.start(ToolCall("c1", "lookup", "{}"))
        assert slow is not None
        assert await tools.filler_due(slow) == "Hold on."
        assert await slow == ToolResult("done")
        ending = tools.start(ToolCall("c2", "end_call", "{}"))
        assert ending is not None
        assert await tools.filler_due(ending) is None
        assert await ending == ENDING
    assert executor.ran == ["lookup"]  # end_call never reaches the executor


# ── the speaker ──────────────────────────────────────────────────────────────────────────
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
    speaker = Speaker(StallingTts(), sink, ConversationConfig(), lambda: 1.0, on_audio=heard.append)
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
