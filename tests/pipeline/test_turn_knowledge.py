"""Each turn's words searched in the assistant's knowledge bases (``every_turn``): what the
search gives goes last into that turn's requests as a system message (the next turn's search
replaces it), the model reads the caller's words as the redaction plan lets it (so does the
search), and the search's time is on the turn's latency record. An executor without it searches
nothing."""

from __future__ import annotations

import asyncio

import pytest

from voicedock.domain.redaction import Redactor
from voicedock.pipeline.dialogue.turn_engine import TurnEngine, TurnParts
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.tools import ToolResult, TurnKnowledge

from .fakes import FakeLlm, FakeSink, FakeStt, FakeTts
from .synth import frames, silence
from .test_turn_engine import config, speak, until

pytestmark = pytest.mark.unit


class _Faq:
    """Searches a two-entry FAQ by word; holds each search ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.asked: list[str] = []
        self.delay = delay

    async def for_turn(self, words: str) -> str | None:
        self.asked.append(words)
        await asyncio.sleep(self.delay)
        if "prescription" in words.lower():
            return "From the knowledge base: [1] (faq.md) Prescriptions take two working days."
        return None


class _Tools:
    """An executor whose assistant searches each turn (``KnowingTools``)."""

    def __init__(self, knowledge: TurnKnowledge | None) -> None:
        self.knowledge = knowledge

    def turn_knowledge(self) -> TurnKnowledge | None:
        return self.knowledge

    async def run(self, call: ToolCall) -> ToolResult:
        return ToolResult("unused", error=True)


async def _two_turns(tools: object, stt: FakeStt) -> tuple[TurnEngine, FakeLlm]:
    sink, llm = FakeSink(), FakeLlm(["Two working days.", "Goodbye."])
    parts = TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink, tools=tools)  # type: ignore[arg-type]
    async with TurnEngine(parts, config()) as conv:
        speak(conv)
        await until(lambda: len(sink.handles) == 1, 10)
        sink.play_all()
        await until(lambda: len(conv.transcript) == 2, 10)
        for frame in frames(silence(3000)):
            conv.feed_audio(frame)
        speak(conv)
        await until(lambda: len(sink.handles) == 2, 10)
        sink.play_all()
        await until(lambda: len(conv.transcript) == 4, 10)
    return conv, llm


async def test_what_a_turn_finds_goes_last_into_its_request_and_only_its_own() -> None:
    faq = _Faq(delay=0.02)
    stt = FakeStt(["How long does a prescription take?", "Thanks, bye."])
    conv, llm = await _two_turns(_Tools(faq), stt)
    assert faq.asked == ["How long does a prescription take?", "Thanks, bye."]
    first, second = llm.calls
    assert first[-1].role == "system"
    assert "two working days" in first[-1].content
    assert first[-2].content == "How long does a prescription take?"
    # The second turn found nothing: the first turn's chunk is not carried on.
    assert [m.role for m in second].count("system") == 1  # the instructions only
    assert all("two working days" not in m.content for m in second)
    one, two = conv.latencies
    assert one.retrieval_ms is not None
    assert one.retrieval_ms >= 15  # the search's own time (held 20 ms)
    assert two.retrieval_ms is not None
    assert one.llm_first_token_ms is not None
    assert one.retrieval_ms <= one.llm_first_token_ms  # searched before the model was asked


async def test_the_search_reads_the_words_as_the_model_does() -> None:
    faq = _Faq()
    stt = FakeStt(["my card is 4111 1111 1111 1111 and my prescription", "Bye."])
    sink, llm = FakeSink(), FakeLlm(["Noted.", "Bye."])
    cfg = config(redactor=Redactor(["card_number"]))
    parts = TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink, tools=_Tools(faq))  # type: ignore[arg-type]
    async with TurnEngine(parts, cfg) as conv:
        speak(conv)
        await until(lambda: len(llm.calls) == 1, 10)
    assert faq.asked
    assert "4111" not in faq.asked[0]
    assert "4111" not in llm.calls[0][-2].content


async def test_an_executor_without_a_turn_search_adds_nothing() -> None:
    stt = FakeStt(["How long does a prescription take?", "Thanks, bye."])
    conv, llm = await _two_turns(_Tools(None), stt)
    assert all(m.role != "system" for m in llm.calls[0][1:])
    assert conv.latencies[0].retrieval_ms is None
