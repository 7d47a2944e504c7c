"""The model's tool calls on a live dialogue (``pipeline/tools.py`` says what a tool is).

Each call is carried out as a task of the dialogue, so the caller can hear the tool filler
(``tool_filler_message``, in voicedock's voice) while a slow one runs; ``end_call`` is the
dialogue's own: its result tells the model the call is ending, and the dialogue ends it. A
tool that speaks as it starts (``SpeakingTools``: a secure keypad entry's prompt) is heard
where the filler would be, at once. A tool's failure (or the executor's) is a result the
model reads, never the turn's error. Each call carried out is told on the dialogue's events
(``ToolCalled``: its name, whether it failed, how long it took).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from voicedock.aio import Supervisor
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.events import CallEvents, ToolCalled
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.speaking.filler import late
from voicedock.pipeline.tools import (
    END_CALL,
    SpeakingTools,
    ToolExecutor,
    ToolResult,
    run_tool,
)

ENDING = ToolResult("The call is ending.", end_turn=True)
_FAILED = ToolResult("The tool failed.", error=True)


class ToolCalls:
    def __init__(
        self,
        executor: ToolExecutor | None,
        tasks: Supervisor,
        config: ConversationConfig,
        events: CallEvents,
    ) -> None:
        self._executor = executor
        self._tasks = tasks
        self._config = config
        self._events = events

    def start(self, call: ToolCall) -> asyncio.Task[ToolResult] | None:
        """Carry ``call`` out in a task of the dialogue's (None: the dialogue is closing)."""
        work = _ending() if call.name == END_CALL else run_tool(self._executor, call)
        return self._tasks.spawn_value(self._told(call, work), _FAILED)

    async def _told(self, call: ToolCall, work: Awaitable[ToolResult]) -> ToolResult:
        """``work``'s result, told on the events once it is there."""
        t0 = time.perf_counter()
        result = await work
        ms = (time.perf_counter() - t0) * 1000
        self._events.emit(ToolCalled(call.name, result.error, ms))
        return result

    async def filler_due(self, call: ToolCall, outcome: asyncio.Task[ToolResult]) -> str | None:
        """What to say while ``call`` runs: at once, what the tool itself says as it starts
        (a prompt: ``SpeakingTools``); else the tool filler once ``outcome`` took
        ``tool_filler_delay_s`` (None: the tool answered in time, or there is no filler)."""
        executor: object = self._executor  # an executor may speak for some of its tools
        if isinstance(executor, SpeakingTools) and call.name != END_CALL:
            said = executor.spoken(call)
            if said is not None:
                return said
        filler = self._config.tool_filler_message
        if filler and await late(outcome, self._config.tool_filler_delay_s):
            return filler
        return None


async def _ending() -> ToolResult:
    return ENDING
