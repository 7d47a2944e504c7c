"""The model's reply on the turn engine, sentence by sentence as the model streams it.

A reply slow to start is covered by the LLM filler (``llm_filler_delay_s``, once per turn,
``pipeline/speaking/filler.py``). With tools, the calls of each reply are carried out in order (the
caller hears the tool filler while a slow one runs), recorded, their results appended as
``tool`` messages, and the model goes on from them, for at most ``max_tool_rounds`` rounds:
the last one must speak. A filler comes among the sentences as a ``Filler``: the turn-taking
(``barge_in.py``) says it as a message of its own, which the model never sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from voicedock.aio import Supervisor
from voicedock.domain.flows import NEXT_STEP
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.flow_run import FlowRun
from voicedock.pipeline.dialogue.history import ModelHistory
from voicedock.pipeline.dialogue.tool_calls import ToolCalls
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.fallback_plans.llm import LlmPlan
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.speaking.filler import FillerPhrases, late
from voicedock.pipeline.text import split_sentences
from voicedock.pipeline.tools import END_CALL, ToolResult, ToolSpec, calls_entry, result_entry

_T = TypeVar("_T")


@dataclass(slots=True, frozen=True)
class Filler:
    """A filler among the reply's sentences: said as a message of its own."""

    text: str


@dataclass(slots=True)
class Wait:
    """A caller's turn waiting for its reply: when the LLM filler is due (perf_counter; None:
    no LLM filler), and whether a filler already covered the wait."""

    filler_due: float | None
    covered: bool = False


class Replies:
    def __init__(
        self,
        plan: LlmPlan,
        wall_clock: Callable[[], float],
        on_end_call: Callable[[], None],
        on_hand_over: Callable[[str], None],
        config: ConversationConfig,
        history: ModelHistory,
        transcript: TranscriptKeeper,
        tool_calls: ToolCalls,
        tasks: Supervisor,
        flow: FlowRun | None = None,
    ) -> None:
        """``on_end_call``: the model called ``end_call`` (its result says the call is
        ending; the dialogue ends it); ``on_hand_over``: a tool handed the call over to the
        member named (the dialogue ends for it); ``flow``: the assistant's flow, whose
        ``next_step`` is carried out here (``flow_run.py``): the node's ``say`` is said in
        the reply, where the model called it, and an end node ends the call after it."""
        self._on_end_call, self._on_hand_over = on_end_call, on_hand_over
        self._plan, self._config, self._history = plan, config, history
        self._transcript, self._tool_calls, self._tasks = transcript, tool_calls, tasks
        self._wall = wall_clock
        self._fillers = FillerPhrases(config.llm_filler_messages)
        self._flow = flow

    def _offered(self) -> tuple[ToolSpec, ...]:
        """The tools of the configuration (those the flow's node names), and the node's
        ``next_step``."""
        if self._flow is None:
            return self._config.tools
        node = self._flow.node
        tools = tuple(tool for tool in self._config.tools if node.offers(tool.name))
        step = self._flow.tool()
        return (*tools, step) if step is not None else tools

    async def sentences(
        self, first_token: Callable[[], None], wait: Wait
    ) -> AsyncIterator[str | Filler]:
        """The model's reply to the context as it is now, with its fillers."""
        plan = self._plan
        tools = self._config.tools or self._flow is not None
        rounds = self._config.max_tool_rounds if tools and plan.calls_tools else 0
        for round_ in range(rounds + 1):
            offered = self._offered() if round_ < rounds else ()  # the last round must speak
            calls: list[ToolCall] = []
            items: AsyncIterator[str | ToolCall | Filler] = plan.sentences(
                self._history.context(),
                offered,
                first_token_timeout_s=self._config.llm_first_token_timeout_s,
                takeover_s=self._config.llm_takeover_s,
                on_first_token=first_token if round_ == 0 else None,
            )
            if round_ == 0 and wait.filler_due is not None:
                items = self._first_in_time(items, wait)
            async for item in items:
                if isinstance(item, ToolCall):
                    calls.append(item)
                else:
                    yield item
            if not calls:
                return
            self._history.add(ChatMessage("assistant", "", tool_calls=tuple(calls)))
            self._transcript.add(calls_entry(calls, self._wall()))
            end_turn = False
            for call in calls:
                if self._flow is not None and call.name == NEXT_STEP:
                    step = self._flow.step(call)
                    self._history.add(
                        ChatMessage("tool", step.result.content, tool_call_id=call.id)
                    )
                    self._transcript.add(result_entry(call, step.result, self._wall()))
                    self._history.step_line = self._flow.instructions()
                    self._transcript.node = self._flow.node.name
                    for sentence in split_sentences(step.say or ""):
                        yield sentence
                    if step.ends:
                        self._on_end_call()
                    end_turn = end_turn or step.result.end_turn
                    continue
                if self._flow is not None and not self._flow.node.offers(call.name):
                    refused = ToolResult(f"{call.name} is not offered in this step.", error=True)
                    self._history.add(ChatMessage("tool", refused.content, tool_call_id=call.id))
                    self._transcript.add(result_entry(call, refused, self._wall()))
                    continue
                result: ToolResult | None = None
                try:
                    if call.name == END_CALL:
                        self._on_end_call()
                    outcome = self._tool_calls.start(call)
                    if outcome is None:  # closing
                        return
                    try:
                        if filler := await self._tool_calls.filler_due(call, outcome):
                            wait.covered = True
                            yield Filler(filler)
                        result = await outcome
                    finally:
                        outcome.cancel()
                finally:
                    # Every call gets its result, so the context stays valid for the model.
                    if result is None:
                        result = ToolResult("The caller interrupted; no result.", error=True)
                    self._history.add(ChatMessage("tool", result.content, tool_call_id=call.id))
                    self._transcript.add(result_entry(call, result, self._wall()))
                if result.hand_over_to is not None:
                    self._on_hand_over(result.hand_over_to)
                end_turn = end_turn or result.end_turn
            if end_turn:
                return

    async def _first_in_time(
        self, items: AsyncIterator[_T], wait: Wait
    ) -> AsyncIterator[_T | Filler]:
        """``items`` (the model's reply), with the LLM filler before them when the first one
        is not there by ``wait.filler_due`` and no filler covered the wait yet. The first
        item is awaited in a task of its own, so the filler is spoken meanwhile."""
        first = self._tasks.spawn_value(_next(items), None)
        if first is None:  # closing
            return
        try:
            assert wait.filler_due is not None
            due = wait.filler_due - time.perf_counter()
            if await late(first, due) and not wait.covered and self._fillers:
                wait.covered = True
                yield Filler(self._fillers.next())
            got = await first
        finally:
            if not first.done():
                first.cancel()
                await asyncio.wait([first])  # done with ``items`` before they are closed
        if isinstance(got, Exception):
            raise got
        if got is None:
            return
        yield got[0]
        async for item in items:
            yield item


async def _next(items: AsyncIterator[_T]) -> tuple[_T] | Exception | None:
    """The next of ``items`` (in a 1-tuple), None at their end, or the error that stopped
    them, for the task that awaits it to raise."""
    try:
        return (await anext(items),)
    except StopAsyncIteration:
        return None
    except Exception as exc:  # noqa: BLE001 - raised by whoever awaits the item
        return exc
