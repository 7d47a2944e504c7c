"""The model's answer awaited on a speech-to-speech call: the caller's turn (or a keypad entry)
ended and the model has not answered yet (``AssistantMessages.awaiting_reply``).

Two watches run meanwhile. With ``dead_air_s`` set, a spoken turn's dead air is covered: when
the model has not answered within that time (a stalled provider), the caller hears
``dead_air_message`` in voicedock's voice while the model's reply is still awaited (it plays
after it), by the rule both dialogues follow (``pipeline/speaking/filler.py`` ``dead_air``). Where a
pipeline takes over a failed session (``hand_over_after_s``,
``pipeline/dialogue/realtime_fallback.py``), no answer within that time, while the caller is not
speaking and no function call runs, is the session's failure (``on_no_answer``, the watch stopped
first).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine

from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.ending import CallEnd
from voicedock.pipeline.dialogue.realtime.function_calls import FunctionCalls
from voicedock.pipeline.dialogue.realtime.messages import AssistantMessages
from voicedock.pipeline.dialogue.realtime.silence_watch import SilenceWatch
from voicedock.pipeline.providers.base import ProviderTimeoutError
from voicedock.pipeline.speaking.filler import dead_air

Spawn = Callable[[Coroutine[object, object, None]], "asyncio.Task[None] | None"]


class AnswerWatch:
    def __init__(
        self,
        config: ConversationConfig,
        end: CallEnd,
        messages: AssistantMessages,
        silence: SilenceWatch,
        function_calls: FunctionCalls,
        *,
        hand_over_after_s: float | None,
        spawn: Spawn,
        spawn_speech: Spawn,
        on_no_answer: Callable[[Exception], Coroutine[object, object, None]],
    ) -> None:
        """``spawn`` runs a task of the dialogue, ``spawn_speech`` one a barge-in stops."""
        self._config, self._end = config, end
        self._messages, self._silence, self._function_calls = messages, silence, function_calls
        self._hand_over_after_s = hand_over_after_s
        self._spawn, self._spawn_speech = spawn, spawn_speech
        self._on_no_answer = on_no_answer
        self._covering: asyncio.Task[None] | None = None  # waiting to cover dead air
        self._deadline: asyncio.Task[None] | None = None  # waiting for an answer in time

    def awaiting(self) -> None:
        """The caller's turn (or keys) awaits the model's answer: with a pipeline to take
        over, the session failed when none comes in time."""
        self._messages.awaiting_reply = True
        if self._hand_over_after_s is not None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self._spawn(self._expect_answer(self._hand_over_after_s))

    def cover_dead_air(self) -> None:
        """The caller's spoken turn ended: its dead air is covered (``dead_air_s`` set)."""
        if self._config.dead_air_s is not None:
            self._covering = self._spawn_speech(self._cover(self._config.dead_air_s))

    def stop(self) -> None:
        """Nothing to cover or wait for any more (the call ends, or the session failed)."""
        for waiting in (self._covering, self._deadline):
            if waiting is not None and waiting is not asyncio.current_task():
                waiting.cancel()

    async def _cover(self, after_s: float) -> None:
        def answered() -> bool:
            awaiting = self._messages.awaiting_reply
            return not awaiting or self._silence.caller_speaking or self._end.ending

        covered = await dead_air(after_s, answered)
        if self._covering is asyncio.current_task():
            self._covering = None  # speaking now: the end lets it finish
        if covered:
            await self._messages.speak(self._config.dead_air_message)

    async def _expect_answer(self, after_s: float) -> None:
        await asyncio.sleep(after_s)
        busy = self._silence.caller_speaking or self._function_calls.running > 0
        if self._messages.awaiting_reply and not busy:
            self.stop()  # the session failed: nothing to cover any more
            await self._on_no_answer(ProviderTimeoutError("realtime: no answer in time"))
