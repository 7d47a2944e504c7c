"""The caller's keypad on a speech-to-speech call: what an entry becomes for the model.

The keys follow the assistant's plan as on a pipeline call (``pipeline/dialogue/keypad_input.py``
keeps them and the entry's timeout): each key barges in (the model's reply and voicedock's
speech stop), a complete entry is ONE user item, ``"Keypad: 1234#"``, recorded in the
transcript, and the model answers it. An entry still open when the server VAD ends a spoken
turn ends with it (``turn_ended``): the model answers the two at once. What was pressed when
the call ends is recorded (``record_open``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine

from voicedock.pipeline.dialogue.ending import CallEnd
from voicedock.pipeline.dialogue.keypad_input import KeypadInput
from voicedock.pipeline.dialogue.realtime.answer_watch import AnswerWatch
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.hearing.keypad import KeypadEntry, KeypadPlan
from voicedock.pipeline.providers.realtime import RealtimeConversation
from voicedock.weak import weak_method

Spawn = Callable[[Coroutine[object, object, None]], "asyncio.Task[None] | None"]


class KeypadEntries:
    def __init__(
        self,
        plan: KeypadPlan,
        wall_clock: Callable[[], float],
        transcript: TranscriptKeeper,
        answer: AnswerWatch,
        end: CallEnd,
        *,
        barge_in: Callable[[RealtimeConversation], Awaitable[None]],
        spawn: Spawn,
    ) -> None:
        """``barge_in`` stops what the assistant says; ``spawn`` runs a task of the dialogue."""
        self._input = KeypadInput(plan, wall_clock, weak_method(self._due))
        self._transcript, self._answer, self._end = transcript, answer, end
        self._barge_in, self._spawn = barge_in, spawn
        self._conv: RealtimeConversation | None = None

    @property
    def enabled(self) -> bool:
        """False: the plan is off, every key is ignored (no barge-in, nothing for the model)."""
        return self._input.enabled

    def connected(self, conv: RealtimeConversation) -> None:
        """The session the entries go to."""
        self._conv = conv

    def press(self, digit: str) -> None:
        """A key the caller pressed (the keypad enabled, the session connected)."""
        assert self._conv is not None
        keys = self._input.press(digit)
        self._spawn(self._pressed(self._conv, keys))

    def turn_ended(self) -> None:
        """The server VAD ended the caller's spoken turn: an open entry ends with it."""
        if (keys := self._input.flush()) is not None and self._conv is not None:
            self._spawn(self._send_entry(self._conv, keys))  # one reply for both

    def record_open(self) -> None:
        """The call ends: what was pressed is recorded, not answered."""
        if (keys := self._input.flush()) is not None:
            self._transcript.add(self._input.entry(keys))

    async def _pressed(self, conv: RealtimeConversation, keys: KeypadEntry | None) -> None:
        await self._barge_in(conv)  # a key barges in like speech
        if keys is not None:
            await self._send_entry(conv, keys)

    def _due(self, deadline: float) -> None:
        keys = self._input.expire(deadline)
        if keys is not None and self._conv is not None and not self._end.ending:
            self._spawn(self._send_entry(self._conv, keys))

    async def _send_entry(self, conv: RealtimeConversation, keys: KeypadEntry) -> None:
        """The entry to the transcript and to the model, which is to answer it."""
        self._transcript.add(self._input.entry(keys))
        self._answer.awaiting()
        await conv.user_text(keys.text)
