"""The turn engine: caller audio in, assistant audio out, one `Conversation` per call.

    feed_audio → Listener (VAD + endpointing) → turn task: STT → LLM → TTS → OutputSink

`feed_audio` is synchronous and cheap (it runs per 20 ms frame); everything slow happens in
tasks owned by the conversation's TaskGroup. When the caller takes the floor, every speech
task is cancelled, queued audio is flushed, and the assistant message is stored cut to what
was actually played (`interrupted=True`). Provider failures lead to a short spoken fallback
within a bounded time and then the end of the call with reason "provider-error": a call is
never left open and silent. The owner hangs up when `wait_ended()` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Self

from voicedock.pipeline.audio import resample_pcm16
from voicedock.pipeline.conversation_config import ConversationConfig as ConversationConfig
from voicedock.pipeline.endpointing import SILENCE_TIMEOUT
from voicedock.pipeline.frames import (
    ChatMessage,
    Dtmf,
    EndCall,
    Frame,
    InjectContext,
    Say,
    TranscriptEntry,
    TurnLatency,
    UserSpeechStarted,
)
from voicedock.pipeline.listener import Listener, UserUtterance
from voicedock.pipeline.llm_stream import llm_sentences
from voicedock.pipeline.output import OutputSink, Speech, SpokenSentence
from voicedock.pipeline.providers.base import Llm, ProviderError, Stt, Tts
from voicedock.pipeline.text import split_sentences

log = logging.getLogger("voicedock.pipeline")

END_CALL_COMMAND = "end-call"
PROVIDER_ERROR = "provider-error"
INTERNAL_ERROR = "internal-error"


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
    ) -> None:
        """``on_transcript`` sees each final message as it is added to ``transcript``."""
        self.config = cfg = config or ConversationConfig()
        self._on_transcript = on_transcript
        self._stt, self._llm, self._tts, self._sink = stt, llm, tts, sink
        self._wall = wall_clock
        self._listener = Listener(
            cfg.sample_rate, vad=cfg.vad, endpointing=cfg.endpointing, pre_roll_ms=cfg.pre_roll_ms
        )
        self.transcript: list[TranscriptEntry] = []
        self.latencies: list[TurnLatency] = []
        self._history: list[ChatMessage] = []
        self._events: asyncio.Queue[Frame] = asyncio.Queue()
        self._tg: asyncio.TaskGroup | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._speech_tasks: set[asyncio.Task[None]] = set()
        self._speeches: list[Speech] = []  # being spoken now, oldest first
        self._speech_lock = asyncio.Lock()
        self._pending_audio = b""  # caller audio not yet transcribed (merged into next turn)
        self._pending_started_ms: int | None = None
        self._audio_t0: float | None = None
        self._ending = False
        self._closed = False
        self._ended = asyncio.Event()
        self.end_reason: str | None = None

    # ── lifecycle ────────────────────────────────────────────────────────────────────────
    async def __aenter__(self) -> Self:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._run_task = self._tg.create_task(self._run())
        if self.config.first_message:
            self._events.put_nowait(Say(self.config.first_message))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop everything now (no final speech); idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in [*self._speech_tasks, *([self._run_task] if self._run_task else [])]:
            task.cancel()
        # What was being said when the call closed is kept, cut to what the caller heard.
        speeches, self._speeches = self._speeches, []
        for speech in speeches:
            with contextlib.suppress(Exception):
                self._settle(speech, await speech.flush(), interrupted=True)
        if self.end_reason is None:
            self.end_reason = "closed"
        self._ended.set()
        if self._tg is not None:
            await self._tg.__aexit__(None, None, None)

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

    def feed_dtmf(self, digit: str) -> None:
        self._events.put_nowait(Dtmf(digit))

    async def say(self, text: str) -> None:
        self._events.put_nowait(Say(text))

    async def inject_context(self, text: str, trigger_response: bool = False) -> None:
        self._events.put_nowait(InjectContext(text, trigger_response))

    async def end_call(self, final_message: str | None = None) -> None:
        """Finish what is being said, speak `final_message`, then signal hang-up."""
        self._events.put_nowait(EndCall(END_CALL_COMMAND, final_message))

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
                await self._interrupt()
            elif isinstance(event, _Turn):
                self._start_turn(event)
            elif isinstance(event, Say):
                sentences = split_sentences(event.text)
                self._spawn(self._speak(partial(_iterate, sentences), self._reserve()))
            elif isinstance(event, InjectContext):
                self._history.append(ChatMessage("system", event.text))
                if event.respond:
                    self._spawn(self._respond(None, None, 0.0))
            elif isinstance(event, Dtmf):
                self._history.append(ChatMessage("system", f"The caller pressed {event.digit}."))
            elif isinstance(event, EndCall):
                await self._finish(event)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        assert self._tg is not None
        task = self._tg.create_task(self._guard(coro))
        self._speech_tasks.add(task)
        task.add_done_callback(self._speech_tasks.discard)
        task.add_done_callback(lambda _t: coro.close())  # cancelled before it ever ran

    async def _guard(self, coro: Coroutine[object, object, None]) -> None:
        try:
            await coro
        except (ProviderError, TimeoutError) as exc:
            log.warning("speech provider failed: %s; ending the call", type(exc).__name__)
            self._events.put_nowait(EndCall(PROVIDER_ERROR, self.config.fallback_message))
        except Exception:
            log.exception("speech task failed; ending the call")
            self._events.put_nowait(EndCall(INTERNAL_ERROR, self.config.fallback_message))

    async def _interrupt(self) -> None:
        """The caller took the floor: stop thinking and speaking, keep what was heard."""
        tasks = list(self._speech_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        speeches, self._speeches = self._speeches, []
        for speech in speeches:
            heard = await speech.flush()
            self._settle(speech, heard, interrupted=True)

    def _start_turn(self, turn: _Turn) -> None:
        stopped = turn.utterance.stopped
        if not self._pending_audio:
            self._pending_started_ms = stopped.started_at_ms
        self._pending_audio += turn.utterance.pcm
        latency = TurnLatency(endpointing_ms=float(stopped.decided_at_ms - stopped.ended_at_ms))
        user = _UserAudio(self._pending_audio, stopped.ended_at_ms)
        self._spawn(self._respond(user, latency, turn.decided))

    # ── turns ────────────────────────────────────────────────────────────────────────────
    async def _respond(
        self, user: _UserAudio | None, latency: TurnLatency | None, t0: float
    ) -> None:
        if user is not None:
            async with asyncio.timeout(self.config.stt_timeout_s):
                text = (await self._stt.transcribe(user.pcm, self.config.sample_rate)).strip()
            if latency is not None:
                latency.stt_final_ms = _ms_since(t0)
            started = self._audio_time(self._pending_started_ms or 0)
            self._pending_audio, self._pending_started_ms = b"", None
            if not text:
                return
            ended = self._audio_time(user.ended_at_ms)
            self._add_transcript(TranscriptEntry("user", text, started, ended))
            self._history.append(ChatMessage("user", text))

        def first_token() -> None:
            if latency is not None:
                latency.llm_first_token_ms = _ms_since(t0)

        def sentences() -> AsyncIterator[str]:
            return llm_sentences(
                self._llm,
                self._context(),
                first_token_timeout_s=self.config.llm_first_token_timeout_s,
                on_first_token=first_token,
            )

        await self._speak(sentences, self._reserve(), latency, t0)
        if latency is not None:
            self.latencies.append(latency)

    async def _speak(
        self,
        make_sentences: Callable[[], AsyncIterator[str]],
        slot: ChatMessage,
        latency: TurnLatency | None = None,
        t0: float = 0.0,
    ) -> None:
        """Synthesize and queue each sentence as it arrives; wait until all was played.

        `slot` is the message's place in the history, reserved when the speech was asked
        for, so the model sees events in the order they happened.
        """
        speech = Speech(slot=slot)
        try:
            async with self._speech_lock:
                self._speeches.append(speech)
                async for sentence in make_sentences():
                    await self._speak_sentence(speech, sentence, latency, t0)
                await speech.wait_played()
                self._speeches.remove(speech)
                self._settle(speech, speech.text, interrupted=False)
        finally:
            if speech.started_at is None:
                self._settle(speech, "", interrupted=False)

    async def _speak_sentence(
        self, speech: Speech, sentence: str, latency: TurnLatency | None, t0: float
    ) -> None:
        spoken = SpokenSentence(sentence)
        rate = self.config.sample_rate
        async with asyncio.timeout(self.config.tts_timeout_s):
            async for pcm in self._tts.synthesize(sentence):
                if latency is not None and latency.tts_first_audio_ms is None:
                    latency.tts_first_audio_ms = _ms_since(t0)
                handle = await self._sink.play(
                    resample_pcm16(pcm, self._tts.sample_rate, rate), rate
                )
                if not spoken.handles:
                    speech.sentences.append(spoken)
                spoken.handles.append(handle)
                if speech.started_at is None:
                    speech.started_at = self._wall()
                    if latency is not None:
                        await handle.started()
                        latency.first_frame_sent_ms = _ms_since(t0)

    # ── the end ──────────────────────────────────────────────────────────────────────────
    async def _finish(self, event: EndCall) -> None:
        self._ending = True
        final = event.final_message
        if event.reason == END_CALL_COMMAND:
            # Let what is being said finish (bounded), then the final words.
            pending = list(self._speech_tasks)
            if pending:
                await asyncio.wait(pending, timeout=self.config.end_call_grace_s)
        elif event.reason == SILENCE_TIMEOUT:
            final = self.config.silence_timeout_message
        await self._interrupt()
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
        return [ChatMessage("system", system), *(m for m in self._history if m.content)]

    def _reserve(self) -> ChatMessage:
        slot = ChatMessage("assistant", "")
        self._history.append(slot)
        return slot

    def _settle(self, speech: Speech, text: str, *, interrupted: bool) -> None:
        """Fill the speech's reserved history slot (or drop it) and record what was heard."""
        slot, speech.slot = speech.slot, None
        if slot is None:
            return
        index = next(i for i, m in enumerate(self._history) if m is slot)
        if speech.started_at is None or not text:
            del self._history[index]
            return
        self._history[index] = ChatMessage("assistant", text)
        entry = TranscriptEntry("assistant", text, speech.started_at, self._wall(), interrupted)
        self._add_transcript(entry)

    def _add_transcript(self, entry: TranscriptEntry) -> None:
        self.transcript.append(entry)
        if self._on_transcript is not None:
            self._on_transcript(entry)

    def _audio_time(self, audio_ms: int) -> float:
        base = self._audio_t0 if self._audio_t0 is not None else self._wall()
        return base + audio_ms / 1000


@dataclass(slots=True, frozen=True)
class _Turn(Frame):
    utterance: UserUtterance
    decided: float  # perf_counter at the endpointing decision


@dataclass(slots=True, frozen=True)
class _UserAudio:
    pcm: bytes
    ended_at_ms: int


async def _iterate(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        yield item


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
