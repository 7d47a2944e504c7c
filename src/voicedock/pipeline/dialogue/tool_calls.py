"""The model's tool calls on a live dialogue (``pipeline/tools.py`` says what a tool is).

Each call is carried out as a task of the dialogue, so the caller can hear the tool filler
(``tool_filler_message``, in voicedock's voice) while a slow one runs; ``end_call`` is the
dialogue's own: its result tells the model the call is ending, and the dialogue ends it. A
tool's failure (or the executor's) is a result the model reads, never the turn's error.
"""

from __future__ import annotations

import asyncio

from voicedock.aio import Supervisor
from voicedock.pipeline.conversation_config import ConversationConfig
from voicedock.pipeline.filler import late
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.tools import END_CALL, ToolExecutor, ToolResult, run_tool

ENDING = ToolResult("The call is ending.", end_turn=True)
_FAILED = ToolResult("The tool failed.", error=True)


class ToolCalls:
    def __init__(
        self, executor: ToolExecutor | None, tasks: Supervisor, config: ConversationConfig
    ) -> None:
        self._executor = executor
        self._tasks = tasks
        self._config = config
        self._speaking = frozenset(tool.name for tool in config.tools if tool.speaks)

    def start(self, call: ToolCall) -> asyncio.Task[ToolResult] | None:
        """Carry ``call`` out in a task of the dialogue's (None: the dialogue is closing)."""
        work = _ending() if call.name == END_CALL else run_tool(self._executor, call)
        return self._tasks.spawn_value(work, _FAILED)

    async def filler_due(self, call: ToolCall, outcome: asyncio.Task[ToolResult]) -> str | None:
        """The tool filler to say now, once ``outcome`` took ``tool_filler_delay_s`` (None:
        the tool answered in time, there is no tool filler, or the tool speaks itself)."""
        filler = self._config.tool_filler_message
        if call.name in self._speaking:
            return None
        if filler and await late(outcome, self._config.tool_filler_delay_s):
            return filler
        return None


async def _ending() -> ToolResult:
    return ENDING
