"""The turn engine: caller audio in, assistant audio out, one `Conversation` per call.

    feed_audio → Listener (VAD + endpointing) → turn task: STT → LLM → TTS → OutputSink

With an `IncrementalStt` (offline Whisper) the caller's turn is transcribed while it is
spoken (``streaming_recognition.py``): the final transcript is ready about when endpointing
decides, and how the turn reads tells adaptive endpointing how long to wait.

`feed_audio` is synchronous and cheap (it runs per 20 ms frame); everything slow happens in
tasks owned by the conversation's supervisor. When the caller takes the floor, what is being
said or thought is cancelled, queued audio is flushed, and the assistant message is stored cut
to what was actually played (`interrupted=True`, possibly empty: a greeting cut before its
first word is still in the transcript). A `say` (and the first message) waiting behind the
interrupted speech is never dropped: it is spoken once the caller's turn is over, or, if the
call ends first, recorded as interrupted at 0 words.

`transcript` is in spoken order (by when a message *started*); `on_transcript` sees each
message once no earlier-started turn is still open (a caller still talking or being
transcribed, an assistant message still playing), so the messages it delivers, too, come in
spoken order. The reply is spoken sentence by sentence as the model streams it; a reply slow
to start, or a slow tool, is covered by a filler (``pipeline/filler.py``), a message of its
own that the model never sees. Provider failures lead to a short spoken fallback
within a bounded time and then the end of the call with reason "provider-error": a call is
never left open and silent. The owner hangs up when `wait_ended()` returns.

The caller's keypad (``pipeline/keypad.py``): each key pressed barges in like speech, and the
digits of one entry become ONE user turn, ``"Keypad: 1234#"``, when the plan's terminator is
pressed, ``max_digits`` are collected or ``timeout_s`` passes after the last digit; the model
answers it like a spoken turn. A spoken turn that ends while an entry is open ends the entry
too: the two are one turn for the model, in the order they started (so are the transcript and
``on_transcript``), and one reply answers both. Words whose reply a key stopped come before
the entry that key started. What was pressed when the call ends is still recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Self

from voicedock.aio import Supervisor
from voicedock.pipeline.conversation_config import ConversationConfig as ConversationConfig
from voicedock.pipeline.dialogue.base import DialogueBase
from voicedock.pipeline.dialogue.ending import ASSISTANT_ENDED_CALL as ASSISTANT_ENDED_CALL
from voicedock.pipeline.dialogue.ending import CLOSED, CallEnd, failure_reason
from voicedock.pipeline.dialogue.ending import END_CALL_COMMAND as END_CALL_COMMAND
from voicedock.pipeline.dialogue.ending import INTERNAL_ERROR as INTERNAL_ERROR
from voicedock.pipeline.dialogue.ending import PROVIDER_ERROR as PROVIDER_ERROR
from voicedock.pipeline.dialogue.ending import REFUSED as REFUSED
from voicedock.pipeline.dialogue.ending import SPEECH_FAILURES as SPEECH_FAILURES
from voicedock.pipeline.dialogue.first_message import opening
from voicedock.pipeline.dialogue.hearing import CallerTurn, Hearing
from voicedock.pipeline.dialogue.history import ModelHistory
from voicedock.pipeline.dialogue.keypad_input import KeypadInput
from voicedock.pipeline.dialogue.reply import Filler, Replies, Wait
from voicedock.pipeline.dialogue.speaker import Speaker, ms_since
from voicedock.pipeline.dialogue.tool_calls import ToolCalls
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.filler import dead_air
from voicedock.pipeline.frames import (
    ChatMessage,
    Dtmf,
    EndCall,
    Frame,
    InjectContext,
    Say,
    SilencePrompt,
    TranscriptEntry,
    TurnLatency,
    UserSpeechStarted,
)
from voicedock.pipeline.keypad import KeypadEntry
from voicedock.pipeline.listener import Listener, UserUtterance
from voicedock.pipeline.output import OutputSink, Speech
from voicedock.pipeline.providers.base import Llm, Stt, Tts
from voicedock.pipeline.text import split_sentences
from voicedock.pipeline.tools import ToolExecutor

log = logging.getLogger("voicedock.pipeline")

__all__ = [
    "ASSISTANT_ENDED_CALL",
    "END_CALL_COMMAND",
    "INTERNAL_ERROR",
    "PROVIDER_ERROR",
    "REFUSED",
    "SPEECH_FAILURES",
    "Conversation",
    "ConversationConfig",
    "failure_reason",
]


class Conversation(DialogueBase):
    """One call's dialogue. Use as ``async with Conversation(...) as conv``."""

    def __init__(
        self,
        *,
        stt: Stt,
        llm: Llm,
        tts: Tts,
        sink: OutputSink,
        config: ConversationConfig | None = None,
        wall_clock: Callable[[], float] = time.time,
        on_transcript: Callable[[TranscriptEntry], None] | None = None,
        tools: ToolExecutor | None = None,
    ) -> None:
        """``on_transcript`` sees each final message as it is added to ``transcript``;
        ``tools`` carries out the model's calls of ``config.tools`` (``end_call`` is the
        conversation's own)."""
        self.config = cfg = config or ConversationConfig()
        self._wall = wall_clock
        self._listener = Listener(
            cfg.sample_rate,
            vad=cfg.vad,
            endpointing=cfg.endpointing,
            pre_roll_ms=cfg.pre_roll_ms,
            echo=cfg.echo,
        )
        self._transcript = TranscriptKeeper(on_transcript, self._open_since)
        self.transcript: list[TranscriptEntry] = self._transcript.entries
        self.latencies: list[TurnLatency] = []
        self._history = ModelHistory(cfg)
        self._events: asyncio.Queue[Frame] = asyncio.Queue()
        # A failing speech task ends the call with the fallback message.
        self._tasks = Supervisor(
            "conversation", log, expected=SPEECH_FAILURES, on_error=self._task_failed
        )
        self._run_task: asyncio.Task[None] | None = None
        self._end = CallEnd(cfg)
        self._hearing = Hearing(stt, self._listener, self._tasks, cfg, wall_clock)
        self._speaker = Speaker(tts, sink, cfg, wall_clock, on_audio=self._listener.echo.play)
        self._replies = Replies(
            llm,
            cfg,
            self._history,
            self._transcript,
            ToolCalls(tools, self._tasks, cfg),
            self._tasks,
            wall_clock,
            on_end_call=partial(self._events.put_nowait, EndCall(ASSISTANT_ENDED_CALL, None)),
        )
        self._keypad = KeypadInput(cfg.keypad, wall_clock, self._keypad_due)
        self._speech_tasks: set[asyncio.Task[None]] = set()
        # Tasks of `say`s not yet speaking: a barge-in lets them wait instead of cancelling.
        self._queued_says: set[asyncio.Task[None]] = set()
        self._floor_free = asyncio.Event()  # cleared while the caller holds the floor
        self._floor_free.set()

    # ── lifecycle ────────────────────────────────────────────────────────────────────────
    async def __aenter__(self) -> Self:
        await self._tasks.start()
        self._run_task = self._tasks.spawn(self._run())
        if (first := opening(self.config)) is not None:
            self._events.put_nowait(first)
        return self

    async def aclose(self, on_quiet: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop everything now (no final speech); idempotent. ``on_quiet``: see ``Dialogue``."""
        if not self._end.close():
            return
        for task in [*self._speech_tasks, *([self._run_task] if self._run_task else [])]:
            task.cancel()
        if (keys := self._keypad.flush()) is not None:
            self._add_keypad(keys)  # pressed before the call ended: recorded, not answered
        # What was being said when the call closed is kept, cut to what the caller heard.
        for speech in self._speaker.take(lambda _speech: False):
            with contextlib.suppress(Exception):
                self._settle(speech, await speech.flush(), interrupted=True)
        if on_quiet is not None:
            await on_quiet()
        if (last := await self._hearing.unfinished()) is not None:
            self._transcript.add(last)
            self._history.add(ChatMessage("user", last.content))
        self._end.end(CLOSED)
        await self._tasks.aclose()
        self._transcript.report(everything=True)  # the call is over: no turn is open any more

    # ── inputs ───────────────────────────────────────────────────────────────────────────
    def feed_audio(self, pcm: bytes) -> None:
        """Caller audio (16-bit mono PCM at the call rate). Cheap; call once per frame."""
        if self._end.over:
            return
        for frame in self._listener.process(pcm, self.assistant_audible):
            if isinstance(frame, UserUtterance):
                self._events.put_nowait(_Turn(frame, time.perf_counter()))
            else:
                self._events.put_nowait(frame)
        self._hearing.listen()
        if self._transcript.holding:  # a caller's blip that did not become a turn no longer
            self._transcript.report()  # holds them

    def feed_dtmf(self, digit: str) -> None:
        self._events.put_nowait(Dtmf(digit))

    async def say(self, text: str) -> None:
        self._events.put_nowait(Say(text))

    async def inject_context(self, text: str, trigger_response: bool = False) -> None:
        self._events.put_nowait(InjectContext(text, trigger_response))

    async def end_call(self, final_message: str | None = None) -> None:
        """Finish what is being said, speak `final_message`, then signal hang-up."""
        self._events.put_nowait(EndCall(END_CALL_COMMAND, final_message))

    async def announce(self, text: str) -> None:
        """Speak `text` to its end (a barge-in does not cut it) and return once it was
        played: a transfer announcement. Recorded like any assistant message."""
        if self._end.over:
            return
        sentences = split_sentences(text)
        await self._speak(
            partial(_iterate, sentences), self._history.reserve(), interruptible=False
        )

    @property
    def history(self) -> list[ChatMessage]:
        return list(self._history.messages)

    # ── the event loop of the call ───────────────────────────────────────────────────────
    async def _run(self) -> None:
        try:
            await self._dispatch_events()
        except Exception:
            # A bug or a broken sink must not leave the call open and silent.
            log.exception("conversation failed; ending the call")
            self._end.ending = True
            self._end.end(INTERNAL_ERROR)

    async def _dispatch_events(self) -> None:
        while True:
            event = await self._events.get()
            if self._end.ending:
                continue
            if isinstance(event, UserSpeechStarted):
                self._floor_free.clear()
                await self._interrupt()
            elif isinstance(event, _Turn):
                self._floor_free.set()
                # An entry still open ends with the caller's spoken turn: one turn for both.
                keys = self._keypad.flush()
                self._start_turn(event, keys)
            elif isinstance(event, SilencePrompt):
                if not self._speaker.speeches and self._floor_free.is_set():
                    self._events.put_nowait(Say(self.config.silence_prompt_message))
            elif isinstance(event, Say):
                sentences = split_sentences(event.text)
                say = self._spawn(self._say(partial(_iterate, sentences), self._history.reserve()))
                if say is not None:
                    self._queued_says.add(say)  # from now on: a barge-in lets it wait
            elif isinstance(event, InjectContext):
                self._history.add(ChatMessage("system", event.text))
                if event.respond:
                    self._spawn(self._respond(None, None, 0.0))
            elif isinstance(event, Dtmf):
                await self._interrupt()  # a key pressed barges in like speech
                self._press(event.digit)
            elif isinstance(event, _KeypadDue):
                if (keys := self._keypad.expire(event.deadline)) is not None:
                    self._keypad_turn(keys)
            elif isinstance(event, EndCall):
                await self._finish(event)

    def _spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None] | None:
        """A speech task: a barge-in cancels it (unless it is a `say` waiting its turn)."""
        task = self._tasks.spawn(coro)
        if task is not None:
            self._speech_tasks.add(task)
            task.add_done_callback(self._speech_tasks.discard)
            task.add_done_callback(self._queued_says.discard)
        return task

    def _task_failed(self, exc: Exception) -> None:
        self._events.put_nowait(EndCall(failure_reason(exc), self.config.fallback_message))

    async def _interrupt(self, *, queued_says: bool = False) -> None:
        """The caller took the floor: stop thinking and speaking, keep what was heard.

        `say`s not speaking yet wait for the caller's turn to end, unless `queued_says`
        (the call ends): then they are cancelled and recorded as interrupted at 0 words.
        """
        tasks = [t for t in self._speech_tasks if queued_says or t not in self._queued_says]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

        def kept(speech: Speech) -> bool:  # an announcement, or a say not audible yet
            waiting = speech.always_recorded and speech.started_at is None and not queued_says
            return waiting or not speech.interruptible

        speeches = self._speaker.take(kept)
        for speech in speeches:
            heard = await speech.flush()
            self._settle(speech, heard, interrupted=True)
        if speeches:
            self._listener.echo.cut()  # what was flushed never comes back

    def _start_turn(self, turn: _Turn, keys: KeypadEntry | None = None) -> None:
        """The caller's spoken turn ended (with ``keys``: the keypad entry it ended)."""
        stopped = turn.utterance.stopped
        latency = TurnLatency(endpointing_ms=float(stopped.decided_at_ms - stopped.ended_at_ms))
        self._respond_with_keys(self._hearing.turn(turn.utterance), latency, turn.decided, keys)

    # ── the keypad ───────────────────────────────────────────────────────────────────────
    def _press(self, digit: str) -> None:
        self._listener.endpointer.caller_active()  # not silent: no prompt, no timeout
        if (keys := self._keypad.press(digit)) is not None:
            self._keypad_turn(keys)

    def _keypad_due(self, deadline: float) -> None:
        self._events.put_nowait(_KeypadDue(deadline))

    def _keypad_turn(self, keys: KeypadEntry) -> None:
        """A complete entry: a user turn. Words of the caller whose reply a key stopped (not
        heard yet) are part of it."""
        self._respond_with_keys(self._hearing.pending(), None, time.perf_counter(), keys)

    def _respond_with_keys(
        self,
        user: CallerTurn | None,
        latency: TurnLatency | None,
        t0: float,
        keys: KeypadEntry | None,
    ) -> None:
        """Answer ``user``'s words and the entry ``keys`` as one turn, in the order they
        started: an entry that started first is in the history now, a later one once the
        words are."""
        then = keys
        if keys is not None and (user is None or self._keys_first(keys)):
            self._add_keypad(keys)
            then = None
        task = self._spawn(self._respond(user, latency, t0, then=then, keyed=keys is not None))
        if task is None and then is not None:  # closing: the entry is still recorded
            self._add_keypad(then)

    def _keys_first(self, keys: KeypadEntry) -> bool:
        """The entry started before the caller's pending words."""
        return self._keypad.wall(keys.started_at) <= self._hearing.started()

    def _add_keypad(self, keys: KeypadEntry) -> None:
        self._transcript.add(self._keypad.entry(keys))
        self._history.add(ChatMessage("user", keys.text))

    # ── turns ────────────────────────────────────────────────────────────────────────────
    async def _respond(
        self,
        user: CallerTurn | None,
        latency: TurnLatency | None,
        t0: float,
        *,
        then: KeypadEntry | None = None,
        keyed: bool = False,
    ) -> None:
        """Answer the caller's turn: ``user``'s words (when spoken), then the keypad entry
        ``then`` (kept even when the turn is stopped before the words are heard); ``keyed``:
        a keypad entry is part of this turn, so it is answered even without words."""
        if user is not None:
            try:
                # Shielded: a barge-in or the call's end stops this turn, not its transcription.
                heard = await asyncio.shield(user.words)
            except BaseException:
                if then is not None:
                    self._add_keypad(then)
                raise
            if isinstance(heard, Exception):
                if then is not None:
                    self._add_keypad(then)
                raise heard
            text = heard
            if latency is not None:
                latency.stt_final_ms = ms_since(t0)
            started = self._hearing.used()
            if not text and then is None and not keyed:
                self._transcript.report()  # the turn closed without words: it holds nothing
                return
            if text:
                ended = self._hearing.at(user.ended_at_ms)
                self._transcript.add(TranscriptEntry("user", text, started, ended))
                self._history.add(ChatMessage("user", text))
        if then is not None:
            self._add_keypad(then)

        def first_token() -> None:
            if latency is not None:
                latency.llm_first_token_ms = ms_since(t0)

        slot = self._history.reserve()
        reply = Speech(slot=slot)
        delay = self.config.llm_filler_delay_s
        wait = Wait(t0 + delay if user is not None and delay is not None else None)
        cover = None
        if user is not None and self.config.dead_air_s is not None:
            cover = self._spawn(self._cover_dead_air(reply, wait, latency, t0))
        try:
            make = partial(self._replies.sentences, first_token, wait)
            await self._speak(make, slot, latency, t0, speech=reply)
        finally:
            if cover is not None and reply.started_at is None:
                cover.cancel()  # never spoke (stopped, failed): nothing to cover any more
        if latency is not None:
            self.latencies.append(latency)

    async def _cover_dead_air(
        self, reply: Speech, wait: Wait, latency: TurnLatency | None, t0: float
    ) -> None:
        """Dead air on our side: when neither ``reply`` nor a filler has started
        ``dead_air_s`` after the caller's words were heard (a stalled LLM or TTS), say
        ``dead_air_message`` meanwhile, as a filler."""

        def answered() -> bool:
            started = reply.started_at is not None or wait.covered
            return started or self._end.ending or not self._floor_free.is_set()

        assert self.config.dead_air_s is not None
        if not await dead_air(self.config.dead_air_s, answered):
            return
        wait.covered = True
        await self._settle_played(await self._say_filler(self.config.dead_air_message, latency, t0))

    async def _say_filler(self, text: str, latency: TurnLatency | None, t0: float) -> Speech:
        """Say a filler (pipeline/filler.py): queued like any speech, so what is queued after
        it is heard after it; recorded once played (``_settle_played``), never in the model's
        context. ``latency.filler_ms`` notes the first one said before the reply's audio."""
        filler = Speech(slot=ChatMessage("assistant", ""), filler=True)  # a slot of its own
        await self._speaker.speak(filler, text)
        if (
            latency is not None
            and latency.filler_ms is None
            and latency.first_frame_sent_ms is None  # said before the reply's own audio
            and filler.sentences
        ):
            await filler.sentences[0].handles[0].started()
            latency.filler_ms = ms_since(t0)
        return filler

    async def _settle_played(self, speech: Speech) -> None:
        if await self._speaker.played(speech):
            self._settle(speech, speech.text, interrupted=False)

    async def _say(
        self, make_sentences: Callable[[], AsyncIterator[str]], slot: ChatMessage
    ) -> None:
        """A `say` (or the first message): queued behind what is being said, spoken once the
        caller does not hold the floor; never dropped silently."""
        speech = Speech(slot=slot, always_recorded=True)
        await self._speak(make_sentences, slot, speech=speech, wait_floor=True)

    async def _speak(
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
        for, so the model sees events in the order they happened. With `wait_floor` the
        speech starts only while the caller is not talking (a queued `say`).
        """
        if speech is None:
            speech = Speech(slot=slot, interruptible=interruptible)
        floor = self._floor_free if wait_floor else None
        try:
            async with self._speaker.lock:
                self._speaker.speeches.append(speech)
                async for sentence in make_sentences():
                    _reraise_swallowed_cancel()
                    if isinstance(sentence, Filler):
                        filler = await self._say_filler(sentence.text, latency, t0)
                        self._spawn(self._settle_played(filler))
                        continue
                    await self._speaker.speak_sentence(
                        speech,
                        sentence,
                        latency=latency,
                        t0=t0,
                        floor=floor,
                        on_started=self._audible_now,
                    )
                _reraise_swallowed_cancel()
                await self._speaker.played(speech)
                self._settle(speech, speech.text, interrupted=False)
        finally:
            if speech.started_at is None:
                # Never spoken: a say is recorded as interrupted at 0 words, the rest dropped.
                self._settle(speech, "", interrupted=speech.always_recorded)

    def _audible_now(self) -> None:
        """A message's first audio was queued: a barge-in cuts it (a `say` no longer waits)."""
        if (task := asyncio.current_task()) is not None:
            self._queued_says.discard(task)

    # ── the end ──────────────────────────────────────────────────────────────────────────
    async def _finish(self, event: EndCall) -> None:
        # While the caller holds the floor a queued say (the greeting too) is not being said:
        # it waits for a turn that may not come before the grace is over, so it is not
        # waited for.
        pending = list(self._speech_tasks)
        if not self._floor_free.is_set():
            pending = [task for task in pending if task not in self._queued_says]
        await self._end.finish(
            event.reason,
            event.final_message,
            pending=pending,
            quiet=partial(self._interrupt, queued_says=True),
            say=self._say_final,
        )

    async def _say_final(self, text: str) -> None:
        sentences = split_sentences(text)
        await self._speak(partial(_iterate, sentences), self._history.reserve())

    # ── helpers ──────────────────────────────────────────────────────────────────────────
    def _settle(self, speech: Speech, text: str, *, interrupted: bool) -> None:
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

    def _open_since(self) -> float | None:
        """When the earliest turn still open started (wall time), if any is."""
        starts = [s.started_at for s in self._speaker.speeches if s.started_at is not None]
        if (caller := self._hearing.open_since()) is not None:
            starts.append(caller)
        if (keying_since := self._keypad.started_at) is not None:
            starts.append(keying_since)
        return min(starts) if starts else None


@dataclass(slots=True, frozen=True)
class _Turn(Frame):
    utterance: UserUtterance
    decided: float  # perf_counter at the endpointing decision


@dataclass(slots=True, frozen=True)
class _KeypadDue(Frame):
    """The keypad entry's timeout, set for ``deadline`` (loop time): stale once a later key
    moved it."""

    deadline: float


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
