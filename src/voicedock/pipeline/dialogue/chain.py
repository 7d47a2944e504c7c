"""A call's dialogue made of dialogues one after the other: a speech-to-speech session, then
the pipeline that takes over when it fails (``pipeline/dialogue/realtime_fallback.py``); a squad's
members, each after the one that handed it the call (``pipeline/dialogue/squad_dialogue.py``).

What the chain shares: what every dialogue of it said, in order (``transcript``,
``latencies``, ``history``); what is asked while the next one starts (say, inject-context,
end-call, keys) waits for it, then goes to it, as does the caller's audio meanwhile
(``HeldAudio``); its end, once, for the first reason given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from voicedock.aio import Closable, Coro, Supervisor
from voicedock.pipeline.dialogue.ending import CLOSED, INTERNAL_ERROR
from voicedock.pipeline.dialogue.held_audio import HeldAudio
from voicedock.pipeline.dialogue.surface import Dialogue
from voicedock.pipeline.frames import ChatMessage, ContextSource, TranscriptEntry, TurnLatency
from voicedock.weak import weak_method

log = logging.getLogger("voicedock.pipeline")

T = TypeVar("T")
Command = Callable[[Dialogue], Coro[None]]


class DialogueChain(Closable):
    """What a chain of dialogues shares; a chain says which are its dialogues so far
    (``_chain``), which one speaks now (``_speaking``: None while the next one starts) and
    how its dialogues close (``_close_dialogues``)."""

    def __init__(self, sample_rate: int, name: str) -> None:
        """``name``: the chain's tasks', in the logs."""
        self._held = HeldAudio(sample_rate)  # the caller's audio while the next one starts
        self._waiting: list[Command] = []  # what was asked meanwhile
        self._reason: str | None = None
        self._ended = asyncio.Event()
        self._closed = False
        self._moving = False  # the next one does not listen yet
        self._tasks = Supervisor(name, log, on_error=weak_method(self._task_failed))
        self._move = asyncio.Lock()  # the move itself (one closed, the next one started)

    def _chain(self) -> Sequence[Dialogue]:
        """The chain's dialogues so far, in the order they spoke."""
        raise NotImplementedError

    def _speaking(self) -> Dialogue | None:
        raise NotImplementedError

    async def _close_dialogues(self, on_quiet: Callable[[], Awaitable[None]] | None) -> None:
        """Close the dialogues that are open (``on_quiet``: see ``Dialogue.aclose``)."""
        raise NotImplementedError

    async def aclose(self, on_quiet: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop now, whichever dialogue speaks (see ``Dialogue``). Idempotent."""
        if self._closed:
            return
        self._closed = True
        async with self._move:  # a move under way is finished first (it is short)
            await self._tasks.aclose()
        await self._close_dialogues(on_quiet)
        self._end(CLOSED)

    async def wait_ended(self) -> str:
        await self._ended.wait()
        assert self._reason is not None
        return self._reason

    @property
    def transcript(self) -> list[TranscriptEntry]:
        return self._of(lambda d: d.transcript)

    @property
    def latencies(self) -> list[TurnLatency]:
        return self._of(lambda d: d.latencies)

    @property
    def history(self) -> list[ChatMessage]:
        return self._of(lambda d: d.history)

    def feed_dtmf(self, digit: str) -> None:
        if (dialogue := self._speaking()) is not None:
            dialogue.feed_dtmf(digit)
        else:
            self._waiting.append(lambda d: _pressed(d, digit))

    async def say(self, text: str) -> None:
        await self._to_speaking(lambda d: d.say(text))

    async def inject_context(
        self, text: str, trigger_response: bool = False, source: ContextSource = "api"
    ) -> None:
        await self._to_speaking(lambda d: d.inject_context(text, trigger_response, source))

    async def end_call(self, final_message: str | None = None) -> None:
        await self._to_speaking(lambda d: d.end_call(final_message))

    def _went_on(self, dialogue: Dialogue, tasks: Supervisor, heard_before: bytes = b"") -> None:
        """``dialogue`` speaks now: it hears ``heard_before`` and the caller's audio held for
        it, then what was asked meanwhile (in ``tasks``)."""
        self._held.replay(dialogue.feed_audio, before=heard_before)
        waiting, self._waiting = self._waiting, []
        for command in waiting:
            tasks.spawn(command(dialogue))

    async def _to_speaking(self, command: Command) -> None:
        if (dialogue := self._speaking()) is not None:
            await command(dialogue)
        elif not self._closed:
            self._waiting.append(command)

    def _of(self, part: Callable[[Dialogue], Sequence[T]]) -> list[T]:
        return [item for d in self._chain() for item in part(d)]

    def _end(self, reason: str) -> None:
        if self._reason is None:
            self._reason = reason
        self._ended.set()

    def _task_failed(self, exc: Exception) -> None:
        """The move failed (the next one could not start): the call is not left silent."""
        self._end(INTERNAL_ERROR)


async def _pressed(dialogue: Dialogue, digit: str) -> None:
    dialogue.feed_dtmf(digit)
