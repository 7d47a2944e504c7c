"""The model's function calls on a speech-to-speech call.

Each one is carried out by the part both engines share (``pipeline/dialogue/tool_calls.py``: a
slow one covered by the tool filler, said in voicedock's voice meanwhile), recorded in the
transcript with its result, and the result sent back: the model answers from it unless it ends
the turn (the call is ending or leaving). The model's ``end_call`` ends the call once its
result was sent, a ``handoff`` its dialogue (the call goes on with another member).
``running`` counts the calls being carried out (no silence prompt meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable

from voicedock.pipeline.dialogue.realtime.messages import AssistantMessages
from voicedock.pipeline.dialogue.tool_calls import ToolCalls
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.providers.realtime import RealtimeConversation, RealtimeFunctionCall
from voicedock.pipeline.tools import END_CALL, calls_entry, result_entry


class FunctionCalls:
    def __init__(
        self,
        tool_calls: ToolCalls,
        transcript: TranscriptKeeper,
        messages: AssistantMessages,
        wall_clock: Callable[[], float],
        *,
        say_filler: Callable[[str], object],
        end_call: Callable[[], object],
        hand_over: Callable[[str], object],
    ) -> None:
        """``say_filler`` says the tool filler (a task a barge-in stops); ``end_call`` ends
        the call as the model asked; ``hand_over``: a tool handed the call over to the
        squad's member named (the dialogue ends for it)."""
        self._tool_calls, self._transcript, self._messages = tool_calls, transcript, messages
        self._wall = wall_clock
        self._say_filler, self._end_call, self._hand_over = say_filler, end_call, hand_over
        self.running = 0

    async def carry_out(self, conv: RealtimeConversation, event: RealtimeFunctionCall) -> None:
        self.running += 1
        try:
            await self._carry_out(conv, ToolCall(event.call_id, event.name, event.arguments))
        finally:
            self.running -= 1

    async def _carry_out(self, conv: RealtimeConversation, call: ToolCall) -> None:
        self._transcript.add(calls_entry([call], self._wall()))
        outcome = self._tool_calls.start(call)
        if outcome is None:  # closing
            return
        if (filler := await self._tool_calls.filler_due(call, outcome)) is not None:
            self._say_filler(filler)
        result = await outcome
        self._transcript.add(result_entry(call, result, self._wall()))
        self._messages.awaiting_reply = not result.end_turn  # the model answers from it
        await conv.function_result(call.id, result.content, respond=not result.end_turn)
        if call.name == END_CALL:
            self._end_call()
        if result.hand_over_to is not None:
            self._hand_over(result.hand_over_to)
