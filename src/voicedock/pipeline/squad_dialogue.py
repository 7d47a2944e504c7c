"""A call that goes on with another assistant of its squad when the model hands it over.

``SquadDialogue`` is the call's ``Dialogue`` when it was placed with a squad: it runs the
dialogue of the member speaking now (the turn engine or the speech-to-speech one, made by the
call, ``calls/live/squad.py``), and when that member's model hands the call over (its
``handoff`` tool: the dialogue ends ``HANDED_OVER``, what was being said said first), the
call goes on with the dialogue of the member named, made with the call so far as its model's
history (``carried_history``: the caller's and the assistants' messages, the tools' results
as notes), under the new member's own instructions, voice and tools; its transition (or first
message) is the first thing it says. So:

* what the caller heard stays said, each message in the transcript once, as heard;
* the caller's words while the next member starts are held and heard by it (transcribed and
  answered), so they need not repeat themself;
* what is asked meanwhile (say, inject-context, end-call, keys) waits for the next member,
  then goes to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, Self, TypeVar, runtime_checkable

from voicedock.aio import Closable, Coro, Supervisor
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.carried import carried_history
from voicedock.pipeline.dialogue.ending import CLOSED, HANDED_OVER, INTERNAL_ERROR
from voicedock.pipeline.dialogue.held_audio import HeldAudio
from voicedock.pipeline.frames import ChatMessage, ContextSource, TranscriptEntry, TurnLatency
from voicedock.weak import weak_method

log = logging.getLogger("voicedock.pipeline")

T = TypeVar("T")
Command = Callable[[Dialogue], Coro[None]]
# The next member's dialogue: for the member named, with the call so far as its history.
NextMember = Callable[[str, tuple[ChatMessage, ...]], Awaitable[Dialogue]]


@runtime_checkable
class HandsOver(Protocol):
    """A dialogue that hands the call over (then it ends ``HANDED_OVER``)."""

    @property
    def handed_over_to(self) -> str | None: ...

    def hand_over(self, member: str) -> None:
        """Hand the call over to ``member`` once what is being said was said."""
        ...


class SquadDialogue(Closable):
    """One call's dialogue across the members of its squad, one at a time."""

    def __init__(self, first: Dialogue, next_member: NextMember, *, sample_rate: int) -> None:
        """``first``: the first member's dialogue (not entered yet); ``next_member`` makes the
        dialogue of the member a handoff names."""
        self._dialogues: list[Dialogue] = [first]
        self._next_member = next_member
        self._moving = False  # handed over: the next member does not listen yet
        self._held = HeldAudio(sample_rate)  # the caller's audio meanwhile
        self._waiting: list[Command] = []  # what was asked meanwhile
        self._tasks = Supervisor("squad call", log, on_error=weak_method(self._task_failed))
        self._move = asyncio.Lock()
        self._reason: str | None = None
        self._ended = asyncio.Event()
        self._closed = False

    # ── lifecycle ────────────────────────────────────────────────────────────────────────
    async def __aenter__(self) -> Self:
        await self._tasks.start()
        first = self._dialogues[0]
        await first.__aenter__()
        self._tasks.spawn(self._follow(first))
        return self

    async def aclose(self, on_quiet: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop now, whichever member speaks (see ``Dialogue``). Idempotent."""
        if self._closed:
            return
        self._closed = True
        async with self._move:  # a move under way is finished first (it is short)
            await self._tasks.aclose()
        await self._dialogues[-1].aclose(on_quiet)
        self._end(CLOSED)

    async def wait_ended(self) -> str:
        await self._ended.wait()
        assert self._reason is not None
        return self._reason

    # ── what every member hears and says ─────────────────────────────────────────────────
    @property
    def transcript(self) -> list[TranscriptEntry]:
        return self._of(lambda d: d.transcript)

    @property
    def latencies(self) -> list[TurnLatency]:
        return self._of(lambda d: d.latencies)

    @property
    def history(self) -> list[ChatMessage]:
        return self._of(lambda d: d.history)

    @property
    def assistant_audible(self) -> bool:
        return self._dialogues[-1].assistant_audible

    def feed_audio(self, pcm: bytes) -> None:
        if self._moving:
            self._held.hold(pcm)
            return
        self._dialogues[-1].feed_audio(pcm)

    def feed_dtmf(self, digit: str) -> None:
        if not self._moving:
            self._dialogues[-1].feed_dtmf(digit)
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

    def hand_over(self, member: str) -> bool:
        """The call goes on with ``member`` once what is being said was said (an operator's
        handoff); False when the member speaking cannot hand the call over, or a handoff is
        under way already."""
        speaking = self._dialogues[-1]
        if self._moving or self._closed or not isinstance(speaking, HandsOver):
            return False
        speaking.hand_over(member)
        return True

    # ── the handoff ──────────────────────────────────────────────────────────────────────
    async def _follow(self, dialogue: Dialogue) -> None:
        while True:
            reason = await dialogue.wait_ended()
            member = _handed_over_to(dialogue) if reason == HANDED_OVER else None
            if member is None:
                self._end(reason)
                return
            self._moving = True  # from now on the caller's audio waits for the next member
            async with self._move:
                await dialogue.aclose()  # what was cut is in its transcript, as heard
                said = sorted(self.transcript, key=_started_at)
                dialogue = await self._next_member(member, carried_history(said))
                await dialogue.__aenter__()
                self._dialogues.append(dialogue)
                self._go_on(dialogue)

    def _go_on(self, dialogue: Dialogue) -> None:
        """The next member hears the caller's words held for it, then what was asked
        meanwhile."""
        self._moving = False
        self._held.replay(dialogue.feed_audio)
        waiting, self._waiting = self._waiting, []
        for command in waiting:
            self._tasks.spawn(command(dialogue))

    # ── helpers ──────────────────────────────────────────────────────────────────────────
    async def _to_speaking(self, command: Command) -> None:
        if not self._moving:
            await command(self._dialogues[-1])
        elif not self._closed:
            self._waiting.append(command)

    def _of(self, part: Callable[[Dialogue], Sequence[T]]) -> list[T]:
        return [item for d in self._dialogues for item in part(d)]

    def _end(self, reason: str) -> None:
        if self._reason is None:
            self._reason = reason
        self._ended.set()

    def _task_failed(self, exc: Exception) -> None:
        """The move failed (the next member could not start): the call is not left silent."""
        self._end(INTERNAL_ERROR)


def _handed_over_to(dialogue: Dialogue) -> str | None:
    return dialogue.handed_over_to if isinstance(dialogue, HandsOver) else None


def _started_at(entry: TranscriptEntry) -> float:
    return entry.started_at


async def _pressed(dialogue: Dialogue, digit: str) -> None:
    dialogue.feed_dtmf(digit)
