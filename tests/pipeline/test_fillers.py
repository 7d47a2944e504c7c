"""Fillers on the assistant's side (``pipeline/speaking/filler.py``): a slow LLM's first sentence, a
slow tool and a stalled reply are covered by a short phrase, said as a message of its own
that the model never sees; and the reply is spoken sentence by sentence as it streams."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from voicedock.pipeline.dialogue.turn_engine import TurnEngine, TurnParts
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.providers.base import ProviderUnavailableError
from voicedock.pipeline.speaking.filler import FillerPhrases
from voicedock.pipeline.tools import ToolResult, ToolSpec

from .fakes import FakeLlm, FakeSink, FakeStt, FakeTts, ToolFirstLlm
from .synth import frames, silence
from .test_turn_engine import config, speak, until

pytestmark = pytest.mark.unit


def spoken(conv: TurnEngine) -> list[tuple[str, str]]:
    return [(e.role, e.content) for e in conv.transcript]


def contents(messages: Sequence[ChatMessage]) -> list[str]:
    return [m.content for m in messages if m.role != "system"]


async def test_a_slow_first_sentence_is_covered_by_the_filler_then_the_reply_follows() -> None:
    """The model's first answer is held until the filler was queued, whatever the machine's
    load; the second answers at once, well inside the filler's delay of 1 s."""
    stt, tts, sink = FakeStt(["Is the library open?", "Thanks."]), FakeTts(), FakeSink()
    thinking = asyncio.Event()
    llm = FakeLlm([["It opens ", "at nine."], "Bye."], hold=thinking)
    cfg = config(llm_filler_delay_s=1.0, llm_filler_messages=("Let me see.",))
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=tts, sink=sink), cfg) as conv:
        speak(conv)
        await until(lambda: len(sink.handles) == 1, 10)  # the filler, while the model thinks
        assert tts.texts == ["Let me see."]
        assert not llm.last_chunk_at
        thinking.set()
        await until(lambda: len(sink.handles) == 2, 10)  # the reply, queued behind the filler
        assert not sink.handles[0].played_ms  # nothing overlaps: the reply waits its turn
        sink.play_all()
        await until(lambda: len(conv.transcript) == 3, 10)
        # The caller's audio is fed faster than real time: a pause of 5 s in it places the next
        # words after the filler and the reply (said on the loop's clock) however slowly they came.
        for frame in frames(silence(5000)):
            conv.feed_audio(frame)
        speak(conv)
        await until(lambda: len(conv.transcript) == 4, 10)
        await until(lambda: len(sink.handles) == 3, 10)
        sink.play_all()
        await until(lambda: len(conv.transcript) == 5, 10)
    assert spoken(conv) == [
        ("user", "Is the library open?"),
        ("assistant", "Let me see."),
        ("assistant", "It opens at nine."),
        ("user", "Thanks."),
        ("assistant", "Bye."),
    ]
    # The filler is voicedock's: the model's next request does not carry it.
    assert contents(llm.calls[1]) == ["Is the library open?", "It opens at nine.", "Thanks."]
    slow, prompt = conv.latencies
    assert slow.filler_ms is not None
    assert slow.llm_first_token_ms is not None
    assert slow.first_frame_sent_ms is not None
    assert 1000 <= slow.filler_ms < slow.llm_first_token_ms <= slow.first_frame_sent_ms
    assert prompt.filler_ms is None  # the second reply came in time: no filler


async def test_the_phrases_rotate_and_each_turn_gets_at_most_one() -> None:
    stt, sink = FakeStt(["One.", "Two.", "Three."]), FakeSink(instant=True)
    llm = FakeLlm(["A.", "B.", "C."], first_token_delay=0.4)
    cfg = config(llm_filler_delay_s=0.05, llm_filler_messages=("Let me see.", "One moment."))
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), cfg) as conv:
        for turns in (3, 6, 9):
            speak(conv)
            await until(lambda n=turns: len(conv.transcript) == n)
    fillers = [text for role, text in spoken(conv) if text not in ("One.", "Two.", "Three.")]
    assert fillers == ["Let me see.", "A.", "One moment.", "B.", "Let me see.", "C."]


def test_the_phrases_of_a_call_are_taken_in_turn() -> None:
    phrases = FillerPhrases(["Let me see.", " ", "One moment."])
    assert [phrases.next() for _ in range(3)] == ["Let me see.", "One moment.", "Let me see."]
    assert not FillerPhrases([])


async def test_a_prompt_reply_gets_no_filler_and_the_filler_is_off_by_default() -> None:
    for cfg in (config(llm_filler_delay_s=0.5), config()):
        stt, tts, sink = FakeStt(["Hi."]), FakeTts(), FakeSink(instant=True)
        llm = FakeLlm(["Hello."], first_token_delay=0.05 if cfg.llm_filler_delay_s else 0.4)
        async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=tts, sink=sink), cfg) as conv:
            speak(conv)
            await until(lambda c=conv: len(c.transcript) == 2)
            await asyncio.sleep(0.1)
        assert spoken(conv) == [("user", "Hi."), ("assistant", "Hello.")]
        assert tts.texts == ["Hello."]


async def test_a_barge_in_cuts_the_filler_like_any_speech() -> None:
    stt, tts, sink = FakeStt(["Where is it?", "Never mind."]), FakeTts(ms_per_char=20), FakeSink()
    llm = FakeLlm(["Okay."], first_token_delay=0.5)  # the first request never answers
    cfg = config(llm_filler_delay_s=0.05, llm_filler_messages=("Let me look that up.",))
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=tts, sink=sink), cfg) as conv:
        speak(conv)
        await until(lambda: len(sink.handles) == 1)
        sink.advance(sink.handles[0].duration_ms / 2)
        speak(conv, speech_ms=400, pause_ms=400)  # the caller takes the floor
        await until(lambda: len(conv.transcript) == 3)
        assert sink.handles[0].flushed
        sink.instant = True
        sink.play_all()
        await until(lambda: len(conv.transcript) == 5)
    cut = conv.transcript[1]
    assert (cut.role, cut.content, cut.interrupted) == ("assistant", "Let me", True)
    assert len(llm.calls) == 2  # the late reply was stopped with its turn
    assert [c for _, c in spoken(conv)][2:] == ["Never mind.", "Let me look that up.", "Okay."]
    assert contents(llm.calls[1]) == ["Where is it?", "Never mind."]


async def test_the_filler_and_the_dead_air_cover_are_not_both_said() -> None:
    stt, sink = FakeStt(["Any news?"]), FakeSink(instant=True)
    llm = FakeLlm(["No news."], first_token_delay=1.0)
    cfg = config(llm_filler_delay_s=0.05, llm_filler_messages=("Let me see.",), dead_air_s=0.5)
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), cfg) as conv:
        speak(conv)
        await until(lambda: len(conv.transcript) == 3)
    assert [c for _, c in spoken(conv)] == ["Any news?", "Let me see.", "No news."]


async def test_a_model_failing_after_the_filler_ends_the_call_with_the_fallback() -> None:
    stt, sink = FakeStt(["Hello?"]), FakeSink(instant=True)
    llm = FakeLlm(first_token_delay=0.2, error=ProviderUnavailableError("down"))
    cfg = config(llm_filler_delay_s=0.05, llm_filler_messages=("Let me see.",))
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), cfg) as conv:
        speak(conv)
        assert await asyncio.wait_for(conv.wait_ended(), 3) == "provider-error"
    assert [c for _, c in spoken(conv)] == ["Hello?", "Let me see.", cfg.fallback_message]


class _SlowTool:
    async def run(self, call: ToolCall) -> ToolResult:
        await asyncio.sleep(0.3)
        return ToolResult("order 42 shipped")


async def test_a_slow_tool_is_covered_by_the_tool_filler_the_same_way() -> None:
    stt, sink = FakeStt(["Where is my order?"]), FakeSink(instant=True)
    llm = ToolFirstLlm("lookup", then="Found it.")
    cfg = config(tools=(ToolSpec("lookup"),), tool_filler_delay_s=0.05)
    async with TurnEngine(
        TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink, tools=_SlowTool()), cfg
    ) as conv:
        speak(conv)
        await until(lambda: any(e.content == "Found it." for e in conv.transcript))
    said = [(r, c) for r, c in spoken(conv) if r in ("user", "assistant")]
    assert said == [
        ("user", "Where is my order?"),
        ("assistant", "One moment, please."),
        ("assistant", "Found it."),
    ]
    assert "One moment, please." not in contents(llm.calls[1])
    (latency,) = conv.latencies
    assert latency.filler_ms is not None  # the caller heard it before any of the reply


async def test_the_reply_is_spoken_sentence_by_sentence_as_it_streams() -> None:
    """The first sentence's audio leaves before the model has finished its reply."""
    stt, tts, sink = FakeStt(["Tell me the hours."]), FakeTts(), FakeSink(instant=True)
    chunks = ["We open ", "at nine. ", "We close ", "at five ", "on weekdays."]
    llm = FakeLlm([chunks], chunk_delay=0.2)
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=tts, sink=sink), config()) as conv:
        speak(conv)
        await until(lambda: len(conv.transcript) == 2)
    (last_token,) = llm.last_chunk_at
    assert sink.queued_at[0] < last_token - 0.3  # three chunks (0.6 s) were still to come
    assert tts.texts == ["We open at nine.", "We close at five on weekdays."]
    (latency,) = conv.latencies
    assert latency.first_frame_sent_ms is not None
