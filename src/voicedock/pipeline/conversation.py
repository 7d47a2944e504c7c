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
import bisect
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeAlias, TypeVar

from voicedock.aio import Supervisor
from voicedock.pipeline.audio import resample_pcm16
from voicedock.pipeline.conversation_config import ConversationConfig as ConversationConfig
from voicedock.pipeline.endpointing import SILENCE_TIMEOUT
from voicedock.pipeline.filler import FillerPhrases, dead_air, late
from voicedock.pipeline.frames import (
    SUPERVISOR,
    ChatMessage,
    ContextSource,
    Dtmf,
    EndCall,
    Frame,
    InjectContext,
    Say,
    SilencePrompt,
    ToolCall,
    TranscriptEntry,
    TurnLatency,
    UserSpeechStarted,
    supervisor_note,
)
from voicedock.pipeline.keypad import KeypadCollector, KeypadEntry
from voicedock.pipeline.listener import Listener, UserUtterance
from voicedock.pipeline.llm_stream import reply_sentences
from voicedock.pipeline.output import OutputSink, Speech, SpokenSentence
from voicedock.pipeline.providers.base import (
    IncrementalStt,
    Llm,
    ProviderError,
    Stt,
    ToolCallingLlm,
    Tts,
)
from voicedock.pipeline.streaming_recognition import StreamingRecognizer
from voicedock.pipeline.text import split_sentences
from voicedock.pipeline.tools import (
    END_CALL,
    ToolExecutor,
    ToolResult,
    calls_entry,
    result_entry,
    run_tool,
)

log = logging.getLogger("voicedock.pipeline")

END_CALL_COMMAND = "end-call"
ASSISTANT_ENDED_CALL = "assistant-ended-call"  # the model called the end_call tool
REFUSED = "refused"  # the organization's server refused the inbound call (its message said)
PROVIDER_ERROR = "provider-error"
INTERNAL_ERROR = "internal-error"
# What a speech provider's failure looks like: the call ends "provider-error", a warning line.
SPEECH_FAILURES = (ProviderError, TimeoutError)


def failure_reason(exc: Exception) -> str:
    """The end reason of a call whose task failed with ``exc``."""
    return PROVIDER_ERROR if isinstance(exc, SPEECH_FAILURES) else INTERNAL_ERROR


class Conversation:
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
        self._tool_executor = tools
        self._on_transcript = on_transcript
        self._stt, self._llm, self._tts, self._sink = stt, llm, tts, sink
        self._wall = wall_clock
        self._llm_fillers = FillerPhrases(cfg.llm_filler_messages)
        self._listener = Listener(
            cfg.sample_rate,
            vad=cfg.vad,
            endpointing=cfg.endpointing,
            pre_roll_ms=cfg.pre_roll_ms,
            echo=cfg.echo,
        )
        self.transcript: list[TranscriptEntry] = []
        self.latencies: list[TurnLatency] = []
        self._history: list[ChatMessage] = []
        self._events: asyncio.Queue[Frame] = asyncio.Queue()
        # A failing speech task ends the call with the fallback message.
        self._tasks = Supervisor(
            "conversation", log, expected=SPEECH_FAILURES, on_error=self._task_failed
        )
        self._run_task: asyncio.Task[None] | None = None
        # The caller's turns transcribed while spoken, by an engine cheap enough for it.
        self._recognizer = (
            StreamingRecognizer(stt, self._listener, self._tasks, cfg.streaming)
            if isinstance(stt, IncrementalStt) and stt.incremental
            else None
        )
        self._speech_tasks: set[asyncio.Task[None]] = set()
        # Tasks of `say`s not yet speaking: a barge-in lets them wait instead of cancelling.
        self._queued_says: set[asyncio.Task[None]] = set()
        self._floor_free = asyncio.Event()  # cleared while the caller holds the floor
        self._floor_free.set()
        self._unreported: list[TranscriptEntry] = []  # final, held for spoken order
        self._speeches: list[Speech] = []  # being spoken now, oldest first
        self._speech_lock = asyncio.Lock()
        self._pending_audio = b""  # caller audio not yet transcribed (merged into next turn)
        self._pending_started_ms: int | None = None
        self._pending_ended_ms: int | None = None
        # The caller's keypad entry being collected, and the timer of its timeout.
        self._keypad = KeypadCollector(cfg.keypad)
        self._keypad_timer: asyncio.TimerHandle | None = None
        # The transcription of `_pending_audio` under way (or done and not yet used): a barge-in
        # does not stop it, the call's close waits for it, a longer turn supersedes it.
        self._hearing: _Hearing | None = None
        self._audio_t0: float | None = None
        self._ending = False
        self._closed = False
        self._ended = asyncio.Event()
        self.end_reason: str | None = None

    # ── lifecycle ────────────────────────────────────────────────────────────────────────
    async def __aenter__(self) -> Self:
        await self._tasks.start()
        self._run_task = self._tasks.spawn(self._run())
        if self.config.first_message and self.config.hang_up_after_first_message:
            self._events.put_nowait(EndCall(REFUSED, self.config.first_message))
        elif self.config.first_message:
            self._events.put_nowait(Say(self.config.first_message))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self, on_quiet: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop everything now (no final speech); idempotent. ``on_quiet``: see ``Dialogue``."""
        if self._closed:
            return
        self._closed = True
        for task in [*self._speech_tasks, *([self._run_task] if self._run_task else [])]:
            task.cancel()
        if self._keypad_timer is not None:
            self._keypad_timer.cancel()
        if (keys := self._keypad.flush(asyncio.get_running_loop().time())) is not None:
            self._add_keypad(keys)  # pressed before the call ended: recorded, not answered
        # What was being said when the call closed is kept, cut to what the caller heard.
        speeches, self._speeches = self._speeches, []
        for speech in speeches:
            with contextlib.suppress(Exception):
                self._settle(speech, await speech.flush(), interrupted=True)
        if on_quiet is not None:
            await on_quiet()
        await self._transcribe_unfinished()
        if self.end_reason is None:
            self.end_reason = "closed"
        self._ended.set()
        await self._tasks.aclose()
        self._report(everything=True)  # the call is over: no turn is open any more

    async def wait_ended(self) -> str:
        """Wait until the conversation decided the call is over; returns the reason."""
        await self._ended.wait()
        assert self.end_reason is not None
        return self.end_reason

    # ── inputs ───────────────────────────────────────────────────────────────────────────
    def feed_audio(self, pcm: bytes) -> None:
        """Caller audio (16-bit mono PCM at the call rate). Cheap; call once per frame."""
        if self._ending or self._closed:
            return
        if self._audio_t0 is None:
            self._audio_t0 = self._wall()
        for frame in self._listener.process(pcm, self.assistant_audible):
            if isinstance(frame, UserUtterance):
                self._events.put_nowait(_Turn(frame, time.perf_counter()))
            else:
                self._events.put_nowait(frame)
        if self._recognizer is not None:
            self._recognizer.listen()
        if self._unreported:  # a caller's blip that did not become a turn no longer holds them
            self._report()

    def feed_dtmf(self, digit: str) -> None:
        self._events.put_nowait(Dtmf(digit))

    async def say(self, text: str) -> None:
        self._events.put_nowait(Say(text))

    async def inject_context(
        self, text: str, trigger_response: bool = False, source: ContextSource = "api"
    ) -> None:
        self._events.put_nowait(InjectContext(text, trigger_response, source))

    async def end_call(self, final_message: str | None = None) -> None:
        """Finish what is being said, speak `final_message`, then signal hang-up."""
        self._events.put_nowait(EndCall(END_CALL_COMMAND, final_message))

    async def announce(self, text: str) -> None:
        """Speak `text` to its end (a barge-in does not cut it) and return once it was
        played: a transfer announcement. Recorded like any assistant message."""
        if self._ending or self._closed:
            return
        sentences = split_sentences(text)
        await self._speak(partial(_iterate, sentences), self._reserve(), interruptible=False)

    @property
    def assistant_audible(self) -> bool:
        return any(s.audible for s in self._speeches)

    @property
    def history(self) -> list[ChatMessage]:
        return list(self._history)

    # ── the event loop of the call ───────────────────────────────────────────────────────
    async def _run(self) -> None:
        try:
            await self._dispatch_events()
        except Exception:
            # A bug or a broken sink must not leave the call open and silent.
            log.exception("conversation failed; ending the call")
            self.end_reason = self.end_reason or INTERNAL_ERROR
            self._ending = True
            self._ended.set()

    async def _dispatch_events(self) -> None:
        while True:
            event = await self._events.get()
            if self._ending:
                continue
            if isinstance(event, UserSpeechStarted):
                self._floor_free.clear()
                await self._interrupt()
            elif isinstance(event, _Turn):
                self._floor_free.set()
                # An entry still open ends with the caller's spoken turn: one turn for both.
                keys = self._keypad.flush(asyncio.get_running_loop().time())
                self._stop_keypad_timer()
                self._start_turn(event, keys)
            elif isinstance(event, SilencePrompt):
                if not self._speeches and self._floor_free.is_set():
                    self._events.put_nowait(Say(self.config.silence_prompt_message))
            elif isinstance(event, Say):
                sentences = split_sentences(event.text)
                say = self._spawn(self._say(partial(_iterate, sentences), self._reserve()))
                if say is not None:
                    self._queued_says.add(say)  # from now on: a barge-in lets it wait
            elif isinstance(event, InjectContext):
                if event.source == SUPERVISOR:
                    self._history.append(ChatMessage("system", supervisor_note(event.text)))
                    now = self._wall()
                    self._add_transcript(TranscriptEntry(SUPERVISOR, event.text, now, now))
                else:
                    self._history.append(ChatMessage("system", event.text))
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

        speeches = [s for s in self._speeches if not kept(s)]
        self._speeches = [s for s in self._speeches if kept(s)]
        for speech in speeches:
            heard = await speech.flush()
            self._settle(speech, heard, interrupted=True)
        if speeches:
            self._listener.echo.cut()  # what was flushed never comes back

    def _start_turn(self, turn: _Turn, keys: KeypadEntry | None = None) -> None:
        """The caller's spoken turn ended (with ``keys``: the keypad entry it ended)."""
        stopped = turn.utterance.stopped
        alone = not self._pending_audio  # not merged with an earlier turn's audio
        if alone:
            self._pending_started_ms = stopped.started_at_ms
        self._pending_audio += turn.utterance.pcm
        self._pending_ended_ms = stopped.ended_at_ms
        latency = TurnLatency(endpointing_ms=float(stopped.decided_at_ms - stopped.ended_at_ms))
        if self._hearing is not None:
            self._hearing.cancel()  # the merged audio is transcribed instead
        if self._recognizer is not None and alone:
            words = self._recognizer.final(turn.utterance)
        else:
            words = self._stt.transcribe(self._pending_audio, self.config.sample_rate)
        self._hearing = hearing = self._hear(words)
        user = _UserAudio(hearing, stopped.ended_at_ms)
        self._respond_with_keys(user, latency, turn.decided, keys)

    # ── the keypad ───────────────────────────────────────────────────────────────────────
    def _press(self, digit: str) -> None:
        loop = asyncio.get_running_loop()
        self._listener.endpointer.caller_active()  # not silent: no prompt, no timeout
        keys = self._keypad.press(digit, loop.time())
        self._stop_keypad_timer()
        if keys is not None:
            self._keypad_turn(keys)
        elif (deadline := self._keypad.deadline) is not None:
            due = _KeypadDue(deadline)
            self._keypad_timer = loop.call_at(deadline, self._events.put_nowait, due)

    def _stop_keypad_timer(self) -> None:
        if self._keypad_timer is not None:
            self._keypad_timer.cancel()
            self._keypad_timer = None

    def _keypad_turn(self, keys: KeypadEntry) -> None:
        """A complete entry: a user turn. Words of the caller whose reply a key stopped (not
        heard yet) are part of it."""
        pending = None
        if self._hearing is not None and self._pending_ended_ms is not None:
            pending = _UserAudio(self._hearing, self._pending_ended_ms)
        self._respond_with_keys(pending, None, time.perf_counter(), keys)

    def _respond_with_keys(
        self,
        user: _UserAudio | None,
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
        spoken = self._turn_start(self._pending_started_ms or 0)
        return self._keypad_wall(keys.started_at) <= spoken

    def _add_keypad(self, keys: KeypadEntry) -> None:
        started, ended = self._keypad_wall(keys.started_at), self._keypad_wall(keys.ended_at)
        self._add_transcript(TranscriptEntry("user", keys.text, started, ended))
        self._history.append(ChatMessage("user", keys.text))

    def _keypad_wall(self, loop_time: float) -> float:
        """Wall time of a moment of the keypad's (the event loop's) clock."""
        return self._wall() - (asyncio.get_running_loop().time() - loop_time)

    def _hear(self, words: Coroutine[Any, Any, str]) -> _Hearing:
        """Start a transcription (``words``), bounded by the STT timeout from now; the task
        belongs to the conversation, not to the turn waiting for it, and never fails."""
        deadline = asyncio.get_running_loop().time() + self.config.stt_timeout_s

        async def transcribe() -> str | Exception:
            try:
                async with asyncio.timeout_at(deadline):
                    return (await words).strip()
            except Exception as exc:  # noqa: BLE001 - handed to whoever waits for the words
                return exc

        hearing = self._tasks.spawn_value(transcribe(), "")
        assert hearing is not None  # never called once the conversation closed
        return hearing

    # ── turns ────────────────────────────────────────────────────────────────────────────
    async def _respond(
        self,
        user: _UserAudio | None,
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
                heard = await asyncio.shield(user.hearing)
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
                latency.stt_final_ms = _ms_since(t0)
            started = self._turn_start(self._pending_started_ms or 0)
            self._pending_audio, self._pending_started_ms = b"", None
            self._pending_ended_ms = None
            self._hearing = None
            if not text and then is None and not keyed:
                self._report()  # the turn closed without words: it holds nothing back
                return
            if text:
                ended = self._audio_time(user.ended_at_ms)
                self._add_transcript(TranscriptEntry("user", text, started, ended))
                self._history.append(ChatMessage("user", text))
        if then is not None:
            self._add_keypad(then)

        def first_token() -> None:
            if latency is not None:
                latency.llm_first_token_ms = _ms_since(t0)

        slot = self._reserve()
        reply = Speech(slot=slot)
        delay = self.config.llm_filler_delay_s
        wait = _Wait(t0 + delay if user is not None and delay is not None else None)
        cover = None
        if user is not None and self.config.dead_air_s is not None:
            cover = self._spawn(self._cover_dead_air(reply, wait, latency, t0))
        try:
            make = partial(self._reply, first_token, wait)
            await self._speak(make, slot, latency, t0, speech=reply)
        finally:
            if cover is not None and reply.started_at is None:
                cover.cancel()  # never spoke (stopped, failed): nothing to cover any more
        if latency is not None:
            self.latencies.append(latency)

    async def _cover_dead_air(
        self, reply: Speech, wait: _Wait, latency: TurnLatency | None, t0: float
    ) -> None:
        """Dead air on our side: when neither ``reply`` nor a filler has started
        ``dead_air_s`` after the caller's words were heard (a stalled LLM or TTS), say
        ``dead_air_message`` meanwhile, as a filler."""

        def answered() -> bool:
            started = reply.started_at is not None or wait.covered
            return started or self._ending or not self._floor_free.is_set()

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
        self._speeches.append(filler)
        for sentence in split_sentences(text):
            await self._speak_sentence(filler, sentence, None, 0.0)
        if (
            latency is not None
            and latency.filler_ms is None
            and latency.first_frame_sent_ms is None  # said before the reply's own audio
            and filler.sentences
        ):
            await filler.sentences[0].handles[0].started()
            latency.filler_ms = _ms_since(t0)
        return filler

    async def _settle_played(self, speech: Speech) -> None:
        await speech.wait_played()
        if speech in self._speeches:
            self._speeches.remove(speech)
            self._settle(speech, speech.text, interrupted=False)

    async def _reply(
        self, first_token: Callable[[], None], wait: _Wait
    ) -> AsyncIterator[str | _Filler]:
        """The model's reply, sentence by sentence; a filler first when its first sentence is
        late (``llm_filler_delay_s``). With tools, the calls of each reply are carried out in
        order (the caller hears the tool filler while a slow one runs), their results
        appended as ``tool`` messages, and the model goes on from them."""
        llm, tools = self._llm, self.config.tools
        rounds = self.config.max_tool_rounds if tools and isinstance(llm, ToolCallingLlm) else 0
        for round_ in range(rounds + 1):
            offered = tools if round_ < rounds else ()  # the last round must speak
            stream = (
                llm.stream_with_tools(self._context(), offered)
                if isinstance(llm, ToolCallingLlm) and offered
                else llm.stream(self._context())
            )
            calls: list[ToolCall] = []
            items: AsyncIterator[str | ToolCall | _Filler] = reply_sentences(
                stream,
                first_token_timeout_s=self.config.llm_first_token_timeout_s,
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
            self._history.append(ChatMessage("assistant", "", tool_calls=tuple(calls)))
            self._add_transcript(calls_entry(calls, self._wall()))
            end_turn = False
            for call in calls:
                result: ToolResult | None = None
                try:
                    outcome = self._tasks.spawn_value(
                        self._run_tool(call), ToolResult("The tool failed.", error=True)
                    )
                    if outcome is None:  # closing
                        return
                    try:
                        filler = self.config.tool_filler_message
                        if filler and await late(outcome, self.config.tool_filler_delay_s):
                            wait.covered = True
                            yield _Filler(filler)
                        result = await outcome
                    finally:
                        outcome.cancel()
                finally:
                    # Every call gets its result, so the context stays valid for the model.
                    if result is None:
                        result = ToolResult("The caller interrupted; no result.", error=True)
                    self._history.append(ChatMessage("tool", result.content, tool_call_id=call.id))
                    self._add_transcript(result_entry(call, result, self._wall()))
                end_turn = end_turn or result.end_turn
            if end_turn:
                return

    async def _first_in_time(
        self, items: AsyncIterator[_T], wait: _Wait
    ) -> AsyncIterator[_T | _Filler]:
        """``items`` (the model's reply), with the LLM filler before them when the first one
        is not there by ``wait.filler_due`` and no filler covered the wait yet. The first
        item is awaited in a task of its own, so the filler is spoken meanwhile."""
        first = self._tasks.spawn_value(_next(items), None)
        if first is None:  # closing
            return
        try:
            assert wait.filler_due is not None
            due = wait.filler_due - time.perf_counter()
            if await late(first, due) and not wait.covered and self._llm_fillers:
                wait.covered = True
                yield _Filler(self._llm_fillers.next())
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

    async def _run_tool(self, call: ToolCall) -> ToolResult:
        if call.name == END_CALL:
            self._events.put_nowait(EndCall(ASSISTANT_ENDED_CALL, None))
            return ToolResult("The call is ending.", end_turn=True)
        return await run_tool(self._tool_executor, call)

    async def _say(
        self, make_sentences: Callable[[], AsyncIterator[str]], slot: ChatMessage
    ) -> None:
        """A `say` (or the first message): queued behind what is being said, spoken once the
        caller does not hold the floor; never dropped silently."""
        speech = Speech(slot=slot, always_recorded=True)
        await self._speak(make_sentences, slot, speech=speech, wait_floor=True)

    async def _speak(
        self,
        make_sentences: Callable[[], AsyncIterator[str | _Filler]],
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
        try:
            async with self._speech_lock:
                self._speeches.append(speech)
                async for sentence in make_sentences():
                    _reraise_swallowed_cancel()
                    if isinstance(sentence, _Filler):
                        filler = await self._say_filler(sentence.text, latency, t0)
                        self._spawn(self._settle_played(filler))
                        continue
                    await self._speak_sentence(speech, sentence, latency, t0, wait_floor)
                _reraise_swallowed_cancel()
                await speech.wait_played()
                if speech in self._speeches:
                    self._speeches.remove(speech)
                self._settle(speech, speech.text, interrupted=False)
        finally:
            if speech.started_at is None:
                # Never spoken: a say is recorded as interrupted at 0 words, the rest dropped.
                self._settle(speech, "", interrupted=speech.always_recorded)

    async def _speak_sentence(
        self,
        speech: Speech,
        sentence: str,
        latency: TurnLatency | None,
        t0: float,
        wait_floor: bool = False,
    ) -> None:
        spoken = SpokenSentence(sentence)
        rate = self.config.sample_rate
        async with asyncio.timeout(self.config.tts_timeout_s) as deadline:
            async for pcm in self._tts.synthesize(sentence):
                if wait_floor and speech.started_at is None and not self._floor_free.is_set():
                    # A say's first audio waits for the caller's turn to end (not timed).
                    deadline.reschedule(None)
                    await self._floor_free.wait()
                    loop = asyncio.get_running_loop()
                    deadline.reschedule(loop.time() + self.config.tts_timeout_s)
                if latency is not None and latency.tts_first_audio_ms is None:
                    latency.tts_first_audio_ms = _ms_since(t0)
                audio = resample_pcm16(pcm, self._tts.sample_rate, rate)
                handle = await self._sink.play(audio, rate)
                self._listener.echo.play(audio)  # what may come back on an echoing line
                if not spoken.handles:
                    speech.sentences.append(spoken)
                spoken.handles.append(handle)
                if speech.started_at is None:
                    speech.started_at = self._wall()
                    if (task := asyncio.current_task()) is not None:
                        self._queued_says.discard(task)  # audible now: a barge-in cuts it
                    if latency is not None:
                        await handle.started()
                        latency.first_frame_sent_ms = _ms_since(t0)

    # ── the end ──────────────────────────────────────────────────────────────────────────
    async def _finish(self, event: EndCall) -> None:
        self._ending = True
        final = event.final_message
        if event.reason in (END_CALL_COMMAND, ASSISTANT_ENDED_CALL):
            # Let what is being said finish (bounded), then the final words. While the caller
            # holds the floor a queued say (the greeting too) is not being said: it waits for
            # a turn that may not come before the grace is over, so it is not waited for.
            pending = list(self._speech_tasks)
            if not self._floor_free.is_set():
                pending = [task for task in pending if task not in self._queued_says]
            if pending:
                await asyncio.wait(pending, timeout=self.config.end_call_grace_s)
        elif event.reason == SILENCE_TIMEOUT:
            final = self.config.silence_timeout_message
        await self._interrupt(queued_says=True)
        if final:
            sentences = split_sentences(final)
            try:
                async with asyncio.timeout(self.config.fallback_timeout_s):
                    await self._speak(partial(_iterate, sentences), self._reserve())
            except (ProviderError, TimeoutError) as exc:
                log.warning("final message not spoken: %s", type(exc).__name__)
                await self._interrupt()
        self.end_reason = event.reason
        self._ended.set()

    # ── helpers ──────────────────────────────────────────────────────────────────────────
    def _context(self) -> list[ChatMessage]:
        system = self.config.system_prompt
        if self.config.context:
            system = f"{system}\n\nContext for this call:\n{self.config.context}"
        seeded = self.config.history
        return [ChatMessage("system", system), *seeded, *(m for m in self._history if m.meaningful)]

    def _reserve(self) -> ChatMessage:
        slot = ChatMessage("assistant", "")
        self._history.append(slot)
        return slot

    def _settle(self, speech: Speech, text: str, *, interrupted: bool) -> None:
        """Fill the speech's reserved history slot (or drop it) and record what was heard.

        A message whose audio started is recorded even if nothing of it was heard (empty,
        interrupted); one never started only if it is a `say` (`always_recorded`).
        """
        slot, speech.slot = speech.slot, None
        if slot is None:
            return
        if not speech.filler:  # a filler's slot is not in the history: never the model's
            index = next(i for i, m in enumerate(self._history) if m is slot)
            if text:
                self._history[index] = ChatMessage("assistant", text)
            else:
                del self._history[index]
        if speech.started_at is None and not speech.always_recorded:
            self._report()  # a response that never spoke holds nothing back
            return
        now = self._wall()
        started = speech.started_at if speech.started_at is not None else now
        self._add_transcript(TranscriptEntry("assistant", text, started, now, interrupted))

    def _add_transcript(self, entry: TranscriptEntry) -> None:
        bisect.insort(self.transcript, entry, key=_started_at)
        bisect.insort(self._unreported, entry, key=_started_at)
        self._report()

    def _report(self, *, everything: bool = False) -> None:
        """Hand final messages to `on_transcript` in spoken order: each once no turn that
        started before it is still open."""
        if self._on_transcript is None:
            self._unreported.clear()
            return
        limit = None if everything else self._open_since()
        while self._unreported and (limit is None or self._unreported[0].started_at <= limit):
            self._on_transcript(self._unreported.pop(0))

    def _open_since(self) -> float | None:
        """When the earliest turn still open started (wall time), if any is."""
        starts = [s.started_at for s in self._speeches if s.started_at is not None]
        if self._pending_started_ms is not None:
            starts.append(self._audio_time(self._pending_started_ms))
        speaking_since = self._listener.endpointer.speech_started_ms
        if speaking_since is not None:
            starts.append(self._audio_time(speaking_since))
        if (keying_since := self._keypad.started_at) is not None:
            starts.append(self._keypad_wall(keying_since))
        return min(starts) if starts else None

    async def _transcribe_unfinished(self) -> None:
        """At close: what the caller said that no turn transcribed yet (a turn cut by the
        call's end, a transfer); nothing is lost silently. A transcription already under way
        is waited for (within its own STT timeout), never started again beside itself (only
        one that already failed with a provider's error is tried again); what the caller said
        after it is transcribed once it is over, bounded by the STT timeout."""
        started_ms = self._pending_started_ms
        if started_ms is None:
            started_ms = self._listener.endpointer.speech_started_ms
        hearing, pending = self._hearing, self._pending_audio
        rest = self._listener.take_unfinished()
        self._hearing, self._pending_audio, self._pending_started_ms = None, b"", None
        self._pending_ended_ms = None
        if hearing is not None and _failed(hearing):
            hearing = None  # over, and not for lack of time: its audio is tried once more
        if hearing is None:  # nothing under way for the pending audio: heard with the rest
            rest, pending = pending + rest, b""
        if started_ms is None or (hearing is None and not rest):
            return
        words = [await self._last_words(hearing)] if hearing is not None else []
        if rest:
            rate = self.config.sample_rate
            words.append(await self._last_words(self._hear(self._stt.transcribe(rest, rate))))
        if text := " ".join(w for w in words if w):
            started = self._turn_start(started_ms)
            ended = started + (len(pending) + len(rest)) / (2 * self.config.sample_rate)
            self._add_transcript(TranscriptEntry("user", text, started, ended))
            self._history.append(ChatMessage("user", text))

    async def _last_words(self, hearing: _Hearing) -> str:
        heard = await asyncio.shield(hearing)
        if isinstance(heard, Exception):  # closing: the call's record still follows
            log.warning("last caller words not transcribed: %s", type(heard).__name__)
            return ""
        return heard

    def _audio_time(self, audio_ms: int) -> float:
        base = self._audio_t0 if self._audio_t0 is not None else self._wall()
        return base + audio_ms / 1000

    def _turn_start(self, audio_ms: int) -> float:
        """When a caller turn started; never later than now (audio fed faster than real time,
        as in tests, must not reorder the transcript)."""
        return min(self._audio_time(audio_ms), self._wall())


@dataclass(slots=True, frozen=True)
class _Turn(Frame):
    utterance: UserUtterance
    decided: float  # perf_counter at the endpointing decision


@dataclass(slots=True, frozen=True)
class _KeypadDue(Frame):
    """The keypad entry's timeout, set for ``deadline`` (loop time): stale once a later key
    moved it."""

    deadline: float


@dataclass(slots=True, frozen=True)
class _UserAudio:
    hearing: _Hearing
    ended_at_ms: int


# A transcription of a caller's audio: its words, or the error that stopped them.
_Hearing: TypeAlias = asyncio.Task[str | Exception]
_T = TypeVar("_T")


@dataclass(slots=True, frozen=True)
class _Filler:
    """A filler among the reply's sentences: said as a message of its own."""

    text: str


@dataclass(slots=True)
class _Wait:
    """A caller's turn waiting for its reply: when the LLM filler is due (perf_counter; None:
    no LLM filler), and whether a filler already covered the wait."""

    filler_due: float | None
    covered: bool = False


async def _next(items: AsyncIterator[_T]) -> tuple[_T] | Exception | None:
    """The next of ``items`` (in a 1-tuple), None at their end, or the error that stopped
    them, for the task that awaits it to raise."""
    try:
        return (await anext(items),)
    except StopAsyncIteration:
        return None
    except Exception as exc:  # noqa: BLE001 - raised by whoever awaits the item
        return exc


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


def _failed(hearing: _Hearing) -> bool:
    """The transcription is over with a provider's error (not a timeout)."""
    done = hearing.done() and not hearing.cancelled()
    return done and isinstance(hearing.result(), ProviderError)


def _started_at(entry: TranscriptEntry) -> float:
    return entry.started_at


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
