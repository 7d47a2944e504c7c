"""Barge-in: the assistant's messages on the turn engine and the floor they share with the caller.

Every task that thinks or speaks for the assistant is spawned here (``spawn``): a barge-in
(``interrupt``) cancels them, flushes the queued audio and settles each message cut to what
the caller heard (``interrupted=True``, possibly empty: a greeting cut before its first word
is still in the transcript). A ``say`` (and the first message) waiting behind the interrupted
speech is never dropped: it waits while the caller holds the floor and is spoken once the
caller's turn is over, or, if the call ends first, recorded as interrupted at 0 words. So does
one whose first audio was on its way to the sink when the caller took the floor: that audio
is flushed at once and queued again after the caller's turn (``AssistantAudio``). A
transfer announcement is not cut at all. A barge-in that cut what the caller had begun to hear
is told on the call's events (``ReplyInterrupted``); the echo gate forgets the audio flushed.

With barge-in on words (``words_decide.py``) the caller's speech first *holds* the floor
(``hold``): the audio stops at once, as for a barge-in, but nothing is cancelled or settled;
what the tasks go on queueing waits. The caller's words then decide: an interruption
(``interrupt``, as above) or not (``resume``): each held message goes on from where the caller
stopped hearing it (``RESUME_OVERLAP_MS`` of it said again), then what waited; nothing of it
is recorded as interrupted.

Each message has its place in the model's history from when it was asked for (a reserved
slot, ``history.py``), so the model sees events in the order they happened; once played (or
cut) the slot holds what the caller heard and the message goes to the transcript. A filler
among a reply's sentences is said as a message of its own (``pipeline/speaking/filler.py``): in the
transcript, never in the model's context.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import partial

from voicedock.aio import Supervisor
from voicedock.pipeline.dialogue.assistant_audio import AssistantAudio, ms_since
from voicedock.pipeline.dialogue.events import CallEvents, ReplyInterrupted
from voicedock.pipeline.dialogue.history import ModelHistory
from voicedock.pipeline.dialogue.interruptible_tasks import InterruptibleTasks
from voicedock.pipeline.dialogue.reply import Filler
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.dialogue.words_decide import RESUME_OVERLAP_MS
from voicedock.pipeline.frames import ChatMessage, TranscriptEntry, TurnLatency
from voicedock.pipeline.hearing.echo import EchoGate
from voicedock.pipeline.speaking.output import Speech
from voicedock.pipeline.text import split_sentences


class Floor:
    def __init__(
        self,
        audio: AssistantAudio,
        history: ModelHistory,
        transcript: TranscriptKeeper,
        tasks: Supervisor,
        wall_clock: Callable[[], float],
        echo: EchoGate,
        events: CallEvents,
    ) -> None:
        """``echo``: the echo gate, told of the audio a barge-in flushed (it never comes back);
        ``events`` is told each barge-in (``ReplyInterrupted``)."""
        self.audio = audio
        self._history, self._transcript = history, transcript
        self._wall = wall_clock
        self._echo, self._events = echo, events
        self._running = InterruptibleTasks(tasks)
        # Tasks of `say`s not yet speaking: a barge-in lets them wait instead of cancelling.
        self._queued_says: set[asyncio.Task[None]] = set()
        self.floor_free = asyncio.Event()  # cleared while the caller holds the floor
        self.floor_free.set()
        # Held (``hold``): each message stopped, with the milliseconds heard of each handle.
        self._held: list[tuple[Speech, list[list[float]]]] = []
        self._going_on: asyncio.Task[None] | None = None  # a resume queueing the held audio

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """What is thinking or speaking now."""
        return self._running.running()

    def spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None] | None:
        """A speech task: a barge-in cancels it (unless it is a `say` waiting its turn)."""
        task = self._running.spawn(coro)
        if task is not None:
            task.add_done_callback(self._queued_says.discard)
        return task

    def say(self, text: str) -> None:
        """A `say` (or the first message): queued behind what is being said."""
        sentences = split_sentences(text)
        slot = self._history.reserve()
        speech = Speech(slot=slot, always_recorded=True)
        make = partial(_iterate, sentences)
        task = self.spawn(self.speak(make, slot, speech=speech, wait_floor=True))
        if task is not None:
            self._queued_says.add(task)  # from now on: a barge-in lets it wait

    async def say_now(self, text: str, *, interruptible: bool = True) -> None:
        """Speak ``text`` now and return once it was played (the final message, an
        announcement a barge-in does not cut)."""
        sentences = split_sentences(text)
        slot = self._history.reserve()
        await self.speak(partial(_iterate, sentences), slot, interruptible=interruptible)

    def pending_for_end(self) -> list[asyncio.Task[None]]:
        """What an ``end-call`` lets finish. While the caller holds the floor a queued say
        (the greeting too) is not being said: it waits for a turn that may not come before
        the grace is over, so it is not waited for."""
        if self.floor_free.is_set():
            return self.tasks
        return [task for task in self.tasks if task not in self._queued_says]

    async def interrupt(self, *, queued_says: bool = False) -> None:
        """The caller took the floor: stop thinking and speaking, keep what was heard, and
        tell it (``ReplyInterrupted``) when the caller had begun to hear what was cut.

        `say`s not speaking yet wait for the caller's turn to end, unless `queued_says`
        (the call ends, which is no barge-in): then they are cancelled and recorded as
        interrupted at 0 words.
        """
        self._held, self._going_on = [], None
        await self._running.stop(lambda task: not queued_says and task in self._queued_says)

        def kept(speech: Speech) -> bool:  # an announcement, or a say not audible yet
            waiting = speech.always_recorded and speech.started_at is None and not queued_says
            return waiting or not speech.interruptible

        speeches = self.audio.take(kept)
        for speech in speeches:
            heard = await speech.flush()
            self.settle(speech, heard, interrupted=True)
        if speeches:
            self._echo.cut()  # what was flushed never comes back
        started = sum(1 for speech in speeches if speech.started_at is not None)
        if started and not queued_says:
            self._events.emit(ReplyInterrupted(started))
        if self.audio.held:
            await self.audio.release()  # what was kept plays on

    @property
    def held(self) -> bool:
        """The assistant's audio is held while the caller's words are judged."""
        return self.audio.held

    async def hold(self) -> bool:
        """The caller started over the assistant and their words will decide: stop the audio
        now, keeping where each message was stopped; what is being thought or said goes on,
        its audio waiting. A message going on after an earlier hold stops where it got to.
        False (nothing held) when nothing is audible, or an announcement (which no barge-in
        cuts) is."""
        if (going_on := self._going_on) is not None:
            self._going_on = None
            going_on.cancel()
            await asyncio.wait([going_on])
        started = [s for s in self.audio.speeches if s.started_at is not None]
        if not started or not all(s.interruptible for s in started):
            return False
        self.audio.hold()
        for speech in started:
            stops = [[await handle.flush() for handle in s.handles] for s in speech.sentences]
            self._held.append((speech, stops))
        self._echo.cut()  # what was flushed never comes back
        return True

    def resume(self) -> None:
        """The caller's words did not interrupt: the held messages go on where they were
        stopped, then what waited meanwhile."""
        held, self._held = self._held, []
        self._going_on = self.spawn(self._go_on(held))

    async def _go_on(self, held: list[tuple[Speech, list[list[float]]]]) -> None:
        for speech, stops in held:
            if speech in self.audio.speeches:
                for sentence, heard in zip(list(speech.sentences), stops, strict=False):
                    await self.audio.replay(sentence, heard, RESUME_OVERLAP_MS)
        await self.audio.release()
        if self._going_on is asyncio.current_task():
            self._going_on = None

    async def cut_all(self) -> None:
        """The call closed: what was being said is kept, cut to what the caller heard."""
        for speech in self.audio.take(lambda _speech: False):
            with contextlib.suppress(Exception):
                self.settle(speech, await speech.flush(), interrupted=True)

    async def speak(
        self,
        make_sentences: Callable[[], AsyncIterator[str | Filler]],
        slot: ChatMessage,
        latency: TurnLatency | None = None,
        t0: float = 0.0,
        *,
        speech: Speech | None = None,
        wait_floor: bool = False,
        interruptible: bool = True,
    ) -> None:
        """Synthesize and queue each sentence as it arrives; wait until all was played.

        `slot` is the message's place in the history, reserved when the speech was asked
        for. With `wait_floor` the speech starts only while the caller is not talking (a
        queued `say`).
        """
        if speech is None:
            speech = Speech(slot=slot, interruptible=interruptible)
        floor = self.floor_free if wait_floor else None
        try:
            async with self.audio.lock:
                self.audio.speeches.append(speech)
                async for sentence in make_sentences():
                    _reraise_swallowed_cancel()
                    if isinstance(sentence, Filler):
                        filler = await self.say_filler(sentence.text, latency, t0)
                        self.spawn(self.settle_played(filler))
                        continue
                    await self.audio.speak_sentence(
                        speech,
                        sentence,
                        latency=latency,
                        t0=t0,
                        floor=floor,
                        on_started=self._audible_now,
                    )
                _reraise_swallowed_cancel()
                await self.audio.played(speech)
                self.settle(speech, speech.text, interrupted=False)
        finally:
            if speech.started_at is None:
                # Never spoken: a say is recorded as interrupted at 0 words, the rest dropped.
                self.settle(speech, "", interrupted=speech.always_recorded)

    async def say_filler(self, text: str, latency: TurnLatency | None, t0: float) -> Speech:
        """Say a filler: queued like any speech, so what is queued after it is heard after
        it; recorded once played (``settle_played``), never in the model's context.
        ``latency.filler_ms`` notes the first one said before the reply's audio."""
        filler = Speech(slot=ChatMessage("assistant", ""), filler=True)  # a slot of its own
        await self.audio.speak(filler, text)
        if (
            latency is not None
            and latency.filler_ms is None
            and latency.first_frame_sent_ms is None  # said before the reply's own audio
            and filler.sentences
        ):
            await filler.sentences[0].handles[0].started()
            latency.filler_ms = ms_since(t0)
        return filler

    async def settle_played(self, speech: Speech) -> None:
        if await self.audio.played(speech):
            self.settle(speech, speech.text, interrupted=False)

    def settle(self, speech: Speech, text: str, *, interrupted: bool) -> None:
        """Fill the speech's reserved history slot (or drop it) and record what was heard.

        A message whose audio started is recorded even if nothing of it was heard (empty,
        interrupted); one never started only if it is a `say` (`always_recorded`).
        """
        slot, speech.slot = speech.slot, None
        if slot is None:
            return
        if not speech.filler:  # a filler's slot is not in the history: never the model's
            self._history.fill(slot, text)
        if speech.started_at is None and not speech.always_recorded:
            self._transcript.report()  # a response that never spoke holds nothing back
            return
        now = self._wall()
        started = speech.started_at if speech.started_at is not None else now
        self._transcript.add(TranscriptEntry("assistant", text, started, now, interrupted))

    def open_since(self) -> float | None:
        """When the earliest message still playing started (wall time), if one is."""
        starts = [s.started_at for s in self.audio.speeches if s.started_at is not None]
        return min(starts, default=None)

    def _audible_now(self) -> None:
        """A message's first audio was queued: a barge-in cuts it (a `say` no longer waits)."""
        if (task := asyncio.current_task()) is not None:
            self._queued_says.discard(task)


async def _iterate(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        yield item


def _reraise_swallowed_cancel() -> None:
    """Python 3.11's ``asyncio.wait_for`` (the LLM's first-token deadline) can swallow a
    cancel that lands as its awaitable completes; a barge-in or close would then wait for
    speech nobody flushes any more. A task asked to stop stops here."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
