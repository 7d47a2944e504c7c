"""An LLM plan: the next entry takes over a failed reply within the turn, never repeating a
sentence said nor saying half of one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from voicedock.errors import ProviderError
from voicedock.pipeline.fallback_plans.llm import CONTINUE_NOTE, LlmPlan
from voicedock.pipeline.fallback_plans.plan import Entry, Switch
from voicedock.pipeline.fallback_plans.serving import Endpoints
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.provider_health import Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import Llm, ProviderConnectionError
from voicedock.pipeline.providers.rule_based import PoliteClose
from voicedock.pipeline.tools import ToolSpec
from voicedock.pipeline.turn_engine import ASSISTANT_ENDED_CALL, ConversationConfig, TurnEngine

from .fakes import FakeLlm, FakeSink, FakeStt, FakeTts
from .test_turn_engine import ENDPOINTING, speak, until

pytestmark = pytest.mark.unit

CONTEXT = [ChatMessage("system", "Be brief."), ChatMessage("user", "When are you open?")]
PRIMARY, SECOND = Endpoint("llm", "openai", model="a"), Endpoint("llm", "mistral", model="b")
HEARS, SPEAKS = Endpoint("stt", "offline"), Endpoint("tts", "piper", model="en_US-lessac-medium")


class BreaksMidway(FakeLlm):
    """Streams ``chunks``, then fails (``error``) or hangs (``error`` None)."""

    def __init__(self, chunks: Sequence[str], error: ProviderError | None = None) -> None:
        super().__init__()
        self.chunks, self.failure = list(chunks), error

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        self.calls.append(list(messages))
        for chunk in self.chunks:
            yield chunk
        if self.failure is not None:
            raise self.failure
        await asyncio.sleep(3600)


async def reply(plan: LlmPlan, tools: Sequence[ToolSpec] = ()) -> list[str | ToolCall]:
    return [
        item
        async for item in plan.sentences(CONTEXT, tools, first_token_timeout_s=0.5, takeover_s=0.2)
    ]


def plan(
    first: FakeLlm,
    second: FakeLlm,
    switches: list[Switch],
    health: ProviderHealth | None = None,
) -> LlmPlan:
    entries: list[Entry[Llm]] = [Entry(PRIMARY, first), Entry(SECOND, second)]
    return LlmPlan(entries, health or ProviderHealth(), switches.append)


async def test_an_error_before_any_sentence_gives_the_whole_turn_to_the_next_entry() -> None:
    switches: list[Switch] = []
    second = FakeLlm(["We open at nine."])
    said = await reply(plan(FakeLlm(error=ProviderConnectionError("refused")), second, switches))
    assert said == ["We open at nine."]
    assert second.calls == [CONTEXT]
    assert switches == [Switch("llm", PRIMARY, SECOND, "connection")]


async def test_a_hang_midway_keeps_what_was_said_drops_the_half_sentence_and_continues() -> None:
    switches: list[Switch] = []
    first = BreaksMidway(["We open at nine. ", "On Sundays we"])  # then hangs
    second = FakeLlm([["We open at nine. ", "On Sundays we are closed."]])
    said = await reply(plan(first, second, switches))
    # The fallback repeated the sentence said: skipped; the half sentence was never said.
    assert said == ["We open at nine.", "On Sundays we are closed."]
    asked = second.calls[0]
    assert asked[: len(CONTEXT)] == CONTEXT
    assert asked[len(CONTEXT) :] == [
        ChatMessage("assistant", "We open at nine."),
        ChatMessage("system", CONTINUE_NOTE),
    ]
    assert [s.reason for s in switches] == ["timeout"]


async def test_every_entry_failing_raises_the_last_error() -> None:
    switches: list[Switch] = []
    last = ProviderConnectionError("down too")
    failing = plan(FakeLlm(error=ProviderConnectionError("down")), FakeLlm(error=last), switches)
    with pytest.raises(ProviderConnectionError) as raised:
        await reply(failing)
    assert raised.value is last
    assert switches[-1] == Switch("llm", SECOND, None, "connection")


async def test_an_open_breaker_sends_the_turn_straight_to_the_next_entry() -> None:
    health = ProviderHealth(failures_to_open=1)
    switches: list[Switch] = []
    first = FakeLlm(error=ProviderConnectionError("down"))
    await reply(plan(first, FakeLlm(["One."]), switches, health))
    await reply(plan(first, FakeLlm(["Two."]), switches, health))
    assert len(first.calls) == 1  # the second turn never reached it
    assert [s.reason for s in switches] == ["connection", "breaker-open"]
    assert health.counts()[PRIMARY].switches == 2


async def test_tool_calls_of_a_failed_reply_are_never_carried_out() -> None:
    class CallsThenFails(FakeLlm):
        async def stream_with_tools(
            self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
        ) -> AsyncIterator[str | ToolCall]:
            self.calls.append(list(messages))
            yield ToolCall("c1", "book", "{}")
            raise ProviderConnectionError("gone")

    switches: list[Switch] = []
    entries: list[Entry[Llm]] = [
        Entry(PRIMARY, CallsThenFails()),
        Entry(SECOND, FakeLlm(["Booked."])),
    ]
    said = await reply(LlmPlan(entries, ProviderHealth(), switches.append), (ToolSpec("book"),))
    assert said == ["Booked."]
    assert [s.reason for s in switches] == ["connection"]


async def test_a_call_whose_model_fails_from_the_second_turn_goes_on_with_the_next_entry() -> None:
    class FailsFromSecondTurn(FakeLlm):
        async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
            if self.calls:
                self.calls.append(list(messages))
                raise ProviderConnectionError("500")
            async for chunk in super().stream(messages):
                yield chunk

    first, second = FailsFromSecondTurn(["Hello there."]), FakeLlm(["We open at nine."])
    switches: list[Switch] = []
    entries: list[Entry[Llm]] = [Entry(PRIMARY, first), Entry(SECOND, second)]
    async with TurnEngine(
        stt=FakeStt(["Hi.", "When do you open?"]),
        llm=LlmPlan(entries, ProviderHealth(), switches.append),
        tts=FakeTts(),
        sink=FakeSink(instant=True),
        config=ConversationConfig(endpointing=ENDPOINTING),
        endpoints=Endpoints(stt=HEARS, tts=SPEAKS),
    ) as conv:
        speak(conv)
        await until(lambda: len(conv.transcript) == 2)
        speak(conv)
        await until(lambda: len(conv.transcript) == 4)
        assert conv.end_reason is None
    assert [(e.role, e.content) for e in conv.transcript] == [
        ("user", "Hi."),
        ("assistant", "Hello there."),
        ("user", "When do you open?"),
        ("assistant", "We open at nine."),
    ]
    assert switches == [Switch("llm", PRIMARY, SECOND, "connection")]
    # Each turn's record names the providers that served it.
    assert [(t.stt_provider, t.llm_provider, t.tts_provider) for t in conv.latencies] == [
        ("offline", "openai/a", "piper/en_US-lessac-medium"),
        ("offline", "mistral/b", "piper/en_US-lessac-medium"),
    ]
    assert [e.provider for e in conv.transcript] == ["offline", "piper", "offline", "piper"]


async def test_the_rule_based_policy_after_the_models_closes_the_call_politely() -> None:
    switches: list[Switch] = []
    closing = "Sorry, we have a technical problem. Goodbye!"
    entries: list[Entry[Llm]] = [
        Entry(PRIMARY, FakeLlm(error=ProviderConnectionError("down"))),
        Entry(Endpoint("llm", "rule_based"), PoliteClose(closing)),
    ]
    async with TurnEngine(
        stt=FakeStt(["When do you open?"]),
        llm=LlmPlan(entries, ProviderHealth(), switches.append),
        tts=FakeTts(),
        sink=FakeSink(instant=True),
        config=ConversationConfig(endpointing=ENDPOINTING),  # no tools offered
    ) as conv:
        speak(conv)
        await until(lambda: conv.end_reason is not None)
    assert conv.end_reason == ASSISTANT_ENDED_CALL  # not provider-error
    said = [(e.role, e.content) for e in conv.transcript if e.role in ("user", "assistant")]
    assert said == [("user", "When do you open?"), ("assistant", closing)]
    assert [s.reason for s in switches] == ["connection"]
    assert conv.latencies[0].llm_provider == "rule_based"


async def test_the_polite_close_is_not_asked_a_calls_analysis() -> None:
    closing = Endpoint("llm", "rule_based")
    entries: list[Entry[Llm]] = [
        Entry(PRIMARY, FakeLlm(error=ProviderConnectionError("down"))),
        Entry(closing, PoliteClose()),
    ]
    health, switches = ProviderHealth(), list[Switch]()
    with pytest.raises(ProviderConnectionError):  # the analysis falls back to its heuristic
        [chunk async for chunk in LlmPlan(entries, health, switches.append).stream(CONTEXT)]
    assert switches == [Switch("llm", PRIMARY, None, "connection")]
    assert closing not in health.counts()  # neither asked nor counted as failing


async def test_a_slow_stream_with_no_entry_left_to_take_over_is_waited_for() -> None:
    slow = FakeLlm([["We open ", "at nine."]], chunk_delay=0.4)  # over the 0.2 s takeover
    assert await reply(LlmPlan.alone(slow)) == ["We open at nine."]
    late = FakeLlm(["We open at nine."], first_token_delay=0.4)  # within the first-token 0.5 s
    assert await reply(LlmPlan.alone(late)) == ["We open at nine."]


async def test_a_model_silent_before_its_first_token_is_left_after_the_takeover_time() -> None:
    """The caller waits the takeover time for a hung model, not the first-token deadline
    meant for a model with no entry to take over."""
    switches: list[Switch] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    said = [
        item
        async for item in plan(BreaksMidway([]), FakeLlm(["We open at nine."]), switches).sentences(
            CONTEXT, (), first_token_timeout_s=10, takeover_s=0.2
        )
    ]
    assert said == ["We open at nine."]
    assert loop.time() - started < 2
    assert [s.reason for s in switches] == ["timeout"]


async def test_a_stream_whose_server_never_answers_is_answered_by_the_next_entry() -> None:
    """The call's analysis and a transfer's briefing read the plan as one stream, under a
    deadline of their own: a hung first entry must fail before it uses that up."""
    switches: list[Switch] = []
    hung = BreaksMidway([])  # accepts the request, never sends a token
    entries: list[Entry[Llm]] = [Entry(PRIMARY, hung), Entry(SECOND, FakeLlm(["All fine."]))]
    answering = LlmPlan(entries, ProviderHealth(), switches.append, attempt_timeout_s=0.2)
    async with asyncio.timeout(2):
        text = [token async for token in answering.stream(CONTEXT)]
    assert text == ["All fine."]
    assert switches == [Switch("llm", PRIMARY, SECOND, "timeout")]


async def test_a_slow_first_token_of_the_last_entry_is_waited_for() -> None:
    entries: list[Entry[Llm]] = [
        Entry(PRIMARY, FakeLlm(error=ProviderConnectionError("down"))),
        Entry(SECOND, FakeLlm(["Late."], first_token_delay=0.4)),
    ]
    slow = LlmPlan(entries, ProviderHealth(), attempt_timeout_s=0.2)
    assert [token async for token in slow.stream(CONTEXT)] == ["Late."]
