"""An LLM plan: the next entry takes over a failed reply within the turn, never repeating a
sentence said nor saying half of one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest

from voicedock.errors import ProviderError
from voicedock.pipeline.dialogue.turn_engine import (
    ASSISTANT_ENDED_CALL,
    ConversationConfig,
    TurnEngine,
    TurnParts,
)
from voicedock.pipeline.fallback_plans.llm import CONTINUE_NOTE, LlmPlan
from voicedock.pipeline.fallback_plans.plan import Entry, Switch
from voicedock.pipeline.fallback_plans.serving import Endpoints
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.pools.provider_health import BreakerState, Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import (
    Llm,
    ProviderConnectionError,
    ProviderResponseError,
    ProviderTimeoutError,
)
from voicedock.pipeline.providers.rule_based import PoliteClose
from voicedock.pipeline.tools import ToolSpec

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
    try:
        return [
            item
            async for item in plan.sentences(
                CONTEXT, tools, first_token_timeout_s=0.5, takeover_s=0.2
            )
        ]
    finally:
        await plan.aclose()


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
        TurnParts(
            stt=FakeStt(["Hi.", "When do you open?"]),
            llm=LlmPlan(entries, ProviderHealth(), switches.append),
            tts=FakeTts(),
            sink=FakeSink(instant=True),
            endpoints=Endpoints(stt=HEARS, tts=SPEAKS),
        ),
        ConversationConfig(endpointing=ENDPOINTING),
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
        TurnParts(
            stt=FakeStt(["When do you open?"]),
            llm=LlmPlan(entries, ProviderHealth(), switches.append),
            tts=FakeTts(),
            sink=FakeSink(instant=True),
        ),
        ConversationConfig(endpointing=ENDPOINTING),
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


# The first token's hedge: a next entry asked too when a model is slow to start.

TAKEOVER_S = ConversationConfig().llm_takeover_s  # the product's: 1.2 s


class Timed(FakeLlm):
    """Answers ``reply`` ``first_s`` after it is asked (None: never), or fails then with
    ``error``; notes when each request was asked and when it ended (done or closed)."""

    def __init__(
        self, reply: str, first_s: float | None, error: ProviderError | None = None
    ) -> None:
        super().__init__()
        self.reply, self.first_s, self.failure = reply, first_s, error
        self.asked_at: list[float] = []
        self.ended_at: list[float] = []

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        self.calls.append(list(messages))
        self.asked_at.append(loop.time())
        try:
            await asyncio.sleep(3600 if self.first_s is None else self.first_s)
            if self.failure is not None:
                raise self.failure
            yield self.reply
        finally:
            self.ended_at.append(loop.time())


@dataclass
class Hedged:
    """A plan of two entries (closed when the ``async with`` ends), the switches it reported,
    and breakers that open at the first failure."""

    plan: LlmPlan
    switches: list[Switch]
    health: ProviderHealth

    @classmethod
    @contextlib.asynccontextmanager
    async def of(cls, first: Llm, second: Llm) -> AsyncIterator[Hedged]:
        switches: list[Switch] = []
        health = ProviderHealth(failures_to_open=1)
        entries: list[Entry[Llm]] = [Entry(PRIMARY, first), Entry(SECOND, second)]
        made = cls(LlmPlan(entries, health, switches.append), switches, health)
        try:
            yield made
        finally:
            await made.plan.aclose()

    async def reply(
        self,
        *,
        first_token_timeout_s: float = 10.0,
        takeover_s: float = TAKEOVER_S,
        tools: Sequence[ToolSpec] = (),
    ) -> tuple[list[str | ToolCall], float]:
        """The reply, and how long it took to the end."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        said = [
            item
            async for item in self.plan.sentences(
                CONTEXT, tools, first_token_timeout_s=first_token_timeout_s, takeover_s=takeover_s
            )
        ]
        return said, loop.time() - started

    def failures(self, endpoint: Endpoint) -> tuple[int, BreakerState]:
        return self.health.counts()[endpoint].failures, self.health.state(endpoint)


async def test_a_slow_primary_outrun_by_its_backup_is_not_counted_as_failing() -> None:
    primary, backup = Timed("Primary here.", 2.0), Timed("Backup here.", 0.1)
    async with Hedged.of(primary, backup) as race:
        said, took = await race.reply()
        assert said == ["Backup here."]
        assert TAKEOVER_S + 0.1 <= took < TAKEOVER_S + 0.5
        assert backup.calls == primary.calls == [CONTEXT]  # the same context
        assert backup.asked_at[0] - primary.asked_at[0] == pytest.approx(TAKEOVER_S, abs=0.1)
        assert race.switches == [Switch("llm", PRIMARY, SECOND, "slow")]
        assert race.plan.served == SECOND
        # The primary's request is read on until its first token shows it works, then closed.
        await until(lambda: bool(primary.ended_at), timeout=3)
        assert primary.ended_at[0] - primary.asked_at[0] == pytest.approx(2.0, abs=0.2)
    # One failure would have opened its breaker.
    assert race.failures(PRIMARY) == (0, BreakerState.CLOSED)


async def test_a_slow_primary_answering_before_its_slower_backup_keeps_the_turn() -> None:
    primary, backup = Timed("Primary here.", 1.5), Timed("Backup here.", 3.0)
    async with Hedged.of(primary, backup) as race:
        said, took = await race.reply()
    assert said == ["Primary here."]
    assert 1.5 <= took < 1.9
    assert race.switches == []
    assert race.plan.served == PRIMARY  # the turn's provider
    # The backup was asked at the takeover time, and its request closed when the primary won.
    assert backup.asked_at[0] - primary.asked_at[0] == pytest.approx(TAKEOVER_S, abs=0.1)
    assert backup.ended_at[0] - primary.asked_at[0] == pytest.approx(1.5, abs=0.2)
    assert race.failures(SECOND) == (0, BreakerState.CLOSED)


async def test_a_hung_primary_costs_the_takeover_time_and_still_opens_its_breaker() -> None:
    primary, backup = Timed("Primary here.", None), Timed("Backup here.", 0.1)
    async with Hedged.of(primary, backup) as race:
        said, took = await race.reply(first_token_timeout_s=2.0)
        assert said == ["Backup here."]
        assert took == pytest.approx(TAKEOVER_S + 0.1, abs=0.2)
        assert race.switches == [Switch("llm", PRIMARY, SECOND, "slow")]
        assert race.failures(PRIMARY) == (0, BreakerState.CLOSED)  # not yet: it may be slow
        # No first token within its deadline: it failed, as any model.
        await until(lambda: race.failures(PRIMARY)[0] == 1, timeout=3)
        assert primary.ended_at[0] - primary.asked_at[0] == pytest.approx(2.0, abs=0.2)
        assert race.failures(PRIMARY) == (1, BreakerState.OPEN)
        # So the next turn goes to the backup at once.
        said, took = await race.reply(first_token_timeout_s=2.0)
        assert (said, took < 0.5) == (["Backup here."], True)
        assert [s.reason for s in race.switches] == ["slow", "breaker-open"]
        assert len(primary.calls) == 1


async def test_a_primary_that_fails_outright_is_left_at_once() -> None:
    primary = Timed("Primary here.", 0.0, ProviderResponseError("500 Internal Server Error"))
    async with Hedged.of(primary, Timed("Backup here.", 0.05)) as race:
        said, took = await race.reply()
    assert said == ["Backup here."]
    assert took < 0.3  # not the takeover time
    assert race.switches == [Switch("llm", PRIMARY, SECOND, "bad-response")]
    assert race.failures(PRIMARY)[0] == 1


async def test_a_backup_failing_while_the_slow_primary_is_awaited_leaves_it_the_turn() -> None:
    backup = Timed("Backup here.", 0.05, ProviderConnectionError("refused"))
    async with Hedged.of(Timed("Primary here.", 0.5), backup) as race:
        said, took = await race.reply(takeover_s=0.2)
    assert said == ["Primary here."]
    assert took == pytest.approx(0.5, abs=0.15)
    assert race.switches == []  # the turn never left the primary
    assert race.plan.served == PRIMARY
    assert race.failures(SECOND)[0] == 1  # its failure counts all the same


async def test_both_failing_in_a_race_report_the_turns_path_and_raise() -> None:
    primary = Timed("Primary here.", None)  # fails at its first-token deadline
    backup = Timed("Backup here.", 0.05, ProviderConnectionError("refused"))
    async with Hedged.of(primary, backup) as race:
        with pytest.raises(ProviderTimeoutError):
            await race.reply(first_token_timeout_s=0.6, takeover_s=0.2)
    assert race.switches == [
        Switch("llm", PRIMARY, SECOND, "timeout"),
        Switch("llm", SECOND, None, "connection"),
    ]
    assert (race.failures(PRIMARY)[0], race.failures(SECOND)[0]) == (1, 1)


async def test_the_tool_calls_of_an_outrun_model_are_never_carried_out() -> None:
    class CallsLate(Timed):
        async def stream_with_tools(
            self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
        ) -> AsyncIterator[str | ToolCall]:
            self.calls.append(list(messages))
            try:
                await asyncio.sleep(0.4)
                yield ToolCall("c1", "book", "{}")
            finally:
                self.ended_at.append(asyncio.get_running_loop().time())

    primary = CallsLate("", None)
    async with Hedged.of(primary, Timed("Backup here.", 0.05)) as race:
        said, _ = await race.reply(takeover_s=0.2, tools=(ToolSpec("book"),))
        await until(lambda: bool(primary.ended_at))  # its call came, and was dropped
    assert said == ["Backup here."]
    assert [s.reason for s in race.switches] == ["slow"]


async def test_a_model_before_the_closing_policy_is_waited_for_not_hedged() -> None:
    """The polite close ends the call: it is never asked for speed, only once the model
    failed."""
    async with Hedged.of(Timed("Primary here.", 0.5), PoliteClose("Goodbye!")) as race:
        said, took = await race.reply(takeover_s=0.2)
    assert said == ["Primary here."]
    assert took == pytest.approx(0.5, abs=0.15)
    assert race.switches == []
    assert SECOND not in race.health.counts()  # never asked


async def test_a_barge_in_during_the_race_closes_both_requests_and_counts_neither() -> None:
    primary, backup = Timed("Primary here.", None), Timed("Backup here.", None)
    async with Hedged.of(primary, backup) as race:
        replying = asyncio.create_task(race.reply(takeover_s=0.2))
        await until(lambda: bool(backup.calls))
        replying.cancel()
        await asyncio.wait([replying])
        assert primary.ended_at
        assert backup.ended_at
    assert race.switches == []
    assert all(c.failures == 0 for c in race.health.counts().values())


async def test_each_turn_names_the_entry_that_won_its_race() -> None:
    primary, backup = Timed("Primary here.", 0.45), Timed("Backup here.", 0.4)
    async with (
        Hedged.of(primary, backup) as race,
        TurnEngine(
            TurnParts(
                stt=FakeStt(["Hi.", "When do you open?"]),
                llm=race.plan,
                tts=FakeTts(),
                sink=FakeSink(instant=True),
                endpoints=Endpoints(stt=HEARS, tts=SPEAKS),
            ),
            ConversationConfig(endpointing=ENDPOINTING, llm_takeover_s=0.3),
        ) as conv,
    ):
        speak(conv)  # the primary answers at 0.45 s, before the backup (0.3 + 0.4 s)
        await until(lambda: len(conv.transcript) == 2, timeout=5)
        primary.first_s = 1.0  # now the backup (0.3 + 0.4 s) answers first
        speak(conv)
        await until(lambda: len(conv.transcript) == 4, timeout=5)
    assert [(e.role, e.content) for e in conv.transcript] == [
        ("user", "Hi."),
        ("assistant", "Primary here."),
        ("user", "When do you open?"),
        ("assistant", "Backup here."),
    ]
    assert [t.llm_provider for t in conv.latencies] == ["openai/a", "mistral/b"]
    assert race.switches == [Switch("llm", PRIMARY, SECOND, "slow")]
