"""``RealtimeDialogue``: a call's dialogue over a speech-to-speech provider (``xai_realtime``).

The provider listens (server VAD), thinks and speaks itself; this class is the same surface as
``TurnEngine`` so the live call does not care which one runs: caller audio in
(``feed_audio``), the model's audio out through the ``OutputSink`` (cut on barge-in, stored
cut to what was heard), the transcript as it happens.

What must be reliable is spoken by voicedock's own TTS, never asked of the model: the
``first_message``, ``say``, the final message of ``end-call``, the silence prompt, the
dead-air cover and the fallback when the provider fails. The model is told what was said (a
system item), and a ``say`` (the silence prompt too) cancels the model's reply in flight first;
the dead-air cover plays while the model's late reply is still awaited. Provider failures end
the call with the spoken fallback and reason ``provider-error``: never open and silent. Where a
pipeline takes over a failed session (``hand_over_after_s``: the assistant's fallback plan,
``pipeline/dialogue/realtime_fallback.py``), a failed session ends the dialogue with
``SESSION_FAILED``
instead, once what was being said is played, and the pipeline takes over from ``handover``
(``pipeline/dialogue/realtime/handover.py``).

The dialogue routes the provider's events to its parts, one job each: its own in
``pipeline/dialogue/realtime/`` (``caller_stream.py`` the caller's audio to the provider,
``turn_latency.py`` the per-turn latency, ``messages.py`` the model's reply and voicedock's own
words as the caller heard them, ``function_calls.py`` the model's function calls,
``silence_watch.py`` the call's limits and the silence prompt, ``answer_watch.py`` the model's
answer awaited (the dead air covered, a session that does not answer failed),
``unanswered_turns.py`` the caller's words a pipeline would hear again, ``handover.py`` the
failed session handed to the pipeline, ``own_words.py`` what voicedock says itself,
``keypad_entries.py`` what the caller's keys become for the model), and those it shares with
the turn engine in ``pipeline/dialogue/`` (the assistant's audio, the interruptible tasks, the
transcript keeper, the first message, the tool calls with their filler, the keypad input and
the end: grace, final message, fallback).

The caller's keypad follows the assistant's plan as on a pipeline call
(``pipeline/hearing/keypad.py``):
each key barges in, the entry is ONE user item the model answers; a plan turned off
(``enabled`` False) ignores every key (``keypad_entries.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Self

from voicedock.aio import Supervisor, started
from voicedock.pipeline.dialogue.assistant_audio import AssistantAudio
from voicedock.pipeline.dialogue.base import DialogueBase
from voicedock.pipeline.dialogue.carried import carried_note
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.cut_offs import CutOffsSince
from voicedock.pipeline.dialogue.ending import (
    ASSISTANT_ENDED_CALL,
    CLOSED,
    END_CALL_COMMAND,
    HANDED_OVER,
    SPEECH_FAILURES,
    CallEnd,
    failure_reason,
)
from voicedock.pipeline.dialogue.events import (
    CallEvents,
    ReplyInterrupted,
    SpeechEnded,
    SpeechStarted,
    TurnCommitted,
)
from voicedock.pipeline.dialogue.first_message import opening
from voicedock.pipeline.dialogue.interruptible_tasks import InterruptibleTasks
from voicedock.pipeline.dialogue.realtime.answer_watch import AnswerWatch
from voicedock.pipeline.dialogue.realtime.caller_stream import CallerStream
from voicedock.pipeline.dialogue.realtime.function_calls import FunctionCalls
from voicedock.pipeline.dialogue.realtime.handover import SessionHandover
from voicedock.pipeline.dialogue.realtime.keypad_entries import KeypadEntries
from voicedock.pipeline.dialogue.realtime.messages import AssistantMessages
from voicedock.pipeline.dialogue.realtime.own_words import OwnWords
from voicedock.pipeline.dialogue.realtime.silence_watch import SilenceWatch
from voicedock.pipeline.dialogue.realtime.turn_latency import TurnTimer
from voicedock.pipeline.dialogue.tool_calls import ToolCalls
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.frames import (
    SUPERVISOR,
    ChatMessage,
    ContextSource,
    EndCall,
    Say,
    TranscriptEntry,
    TurnLatency,
    supervisor_note,
)
from voicedock.pipeline.providers.base import (
    ProviderError,
    ProviderResponseError,
    Tts,
)
from voicedock.pipeline.providers.realtime import (
    RealtimeAudio,
    RealtimeConversation,
    RealtimeError,
    RealtimeEvent,
    RealtimeFunctionCall,
    RealtimeResponseDone,
    RealtimeSpeech,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeTranscript,
)
from voicedock.pipeline.speaking.output import OutputSink
from voicedock.pipeline.tools import ToolExecutor
from voicedock.weak import weak_method

log = logging.getLogger("voicedock.pipeline")


@dataclass(frozen=True, slots=True)
class RealtimeParts:
    """What one speech-to-speech dialogue works with: the provider's session (``speech``),
    voicedock's own voice (``tts``) and the sink the call's audio goes out through; ``tools``
    carries out the model's calls of ``config.tools`` (``end_call`` is the dialogue's own);
    ``events`` is told what the dialogue decides (``pipeline/dialogue/events.py``: the caller's
    speech and turns as the provider's server VAD hears them, the replies started and
    interrupted, the tools called, each final message); without it the dialogue keeps a bus of
    its own. ``clock`` times the turns' latency (monotonic seconds)."""

    speech: RealtimeSpeech
    tts: Tts
    sink: OutputSink
    tools: ToolExecutor | None = None
    events: CallEvents | None = None
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time


class RealtimeDialogue(DialogueBase):
    def __init__(
        self,
        parts: RealtimeParts,
        config: ConversationConfig | None = None,
        *,
        hand_over_after_s: float | None = None,
    ) -> None:
        """``hand_over_after_s``: a pipeline takes over when the session fails
        (``pipeline/dialogue/realtime_fallback.py``), and the session failed too when it sends a
        server error or does not answer the caller within that many seconds."""
        self.config = cfg = config or ConversationConfig()
        self._speech = parts.speech
        self._session_over = False  # the provider's events ended
        self._wall = parts.wall_clock
        self.events = parts.events if parts.events is not None else CallEvents("realtime dialogue")
        # Final as the provider says; redacted as the turn engine's (the model hears the caller).
        self._transcript = TranscriptKeeper(self.events, redactor=cfg.redactor, member=cfg.member)
        self.transcript: list[TranscriptEntry] = self._transcript.entries
        self._timer = TurnTimer(cfg, parts.clock)
        self.latencies: list[TurnLatency] = self._timer.latencies
        self._cut_offs = CutOffsSince(self.events)  # counted by the next turn's record
        # What the model was told besides the transcript (injected context), when.
        self.context_notes: list[TranscriptEntry] = []
        self._conv: RealtimeConversation | None = None
        # A failing task ends the call with the fallback message.
        self._tasks = Supervisor(
            "speech-to-speech dialogue",
            log,
            expected=SPEECH_FAILURES,
            on_error=weak_method(self._task_failed),
        )
        self._end = CallEnd(cfg)
        self._interruptible = InterruptibleTasks(self._tasks)  # saying or finishing a reply
        self._caller = CallerStream(cfg.sample_rate, parts.speech.sample_rate)
        self.handed_over_to: str | None = None  # the member the call was handed over to
        speaking = self._speaking(parts)
        self._assistant_audio, self._messages, self._own_words, self._function_calls = speaking
        watching = self._watching(hand_over_after_s)
        self._watch, self.handover, self._answer, self._keypad = watching

    def _speaking(
        self, parts: RealtimeParts
    ) -> tuple[AssistantAudio, AssistantMessages, OwnWords, FunctionCalls]:
        """The assistant's side: audible now, the model's replies (played here) and voicedock's
        own speech; the model's function calls."""
        cfg, wall = self.config, self._wall
        spawn = weak_method(self._spawn)  # the parts' callbacks never keep the dialogue alive
        audio = AssistantAudio(parts.tts, parts.sink, cfg, wall, self.events)
        messages = AssistantMessages(
            audio,
            parts.sink,
            self._transcript,
            self._timer,
            provider_rate=parts.speech.sample_rate,
            call_rate=cfg.sample_rate,
            wall_clock=wall,
            spawn=spawn,
        )
        own = OwnWords(
            messages, cfg.silence_prompt_message, spawn_speech=weak_method(self._spawn_speech)
        )
        function_calls = FunctionCalls(
            ToolCalls(parts.tools, self._tasks, cfg, self.events),
            self._transcript,
            messages,
            wall,
            say_filler=own.filler,
            end_call=weak_method(self._assistant_ended),
            hand_over=weak_method(self.hand_over),
        )
        return audio, messages, own, function_calls

    def _watching(
        self, hand_over_after_s: float | None
    ) -> tuple[SilenceWatch, SessionHandover, AnswerWatch, KeypadEntries]:
        """What watches the call: its limits and silences, the model's answer awaited, the
        session handed to a pipeline should it fail (``hand_over_after_s`` set), the keys."""
        cfg, audio = self.config, self._assistant_audio
        spawn = weak_method(self._spawn)
        watch = SilenceWatch(
            cfg,
            self._end,
            audible=lambda: audio.audible,
            busy=weak_method(self._busy),
            on_end=weak_method(self._limit_reached),
            on_prompt=self._own_words.prompt_silence,
        )
        handover = SessionHandover(
            cfg, self._end, self._messages, self._interruptible, after_s=hand_over_after_s
        )
        answer = AnswerWatch(
            cfg,
            self._end,
            self._messages,
            watch,
            self._function_calls,
            hand_over_after_s=hand_over_after_s,
            spawn=spawn,
            spawn_speech=weak_method(self._spawn_speech),
            on_no_answer=handover.fail,
        )
        keypad = KeypadEntries(
            cfg.keypad,
            self._wall,
            self._transcript,
            answer,
            self._end,
            barge_in=weak_method(self._barge_in),
            spawn=spawn,
        )
        return watch, handover, answer, keypad

    # ── lifecycle ────────────────────────────────────────────────────────────────────────
    async def __aenter__(self) -> Self:
        """Connect to the provider (raises ``ProviderError``) and start the call."""
        conv = self._speech.connect(self.config.instructions, self.config.tools)
        # The socket may be open when the session update failed: closed then.
        self._conv = await started(conv, conv.connect)
        self._own_words.connected(conv)
        self._keypad.connected(conv)
        if self.config.carried:  # the call so far, before its first words
            await conv.inject_context(carried_note(self.config.carried))
        await self._tasks.start()
        self._spawn(self._follow_provider(conv))
        self._spawn(self._caller.run(conv))
        self._spawn(self._watch.run())
        first = opening(self.config)
        if isinstance(first, Say):
            self._own_words.say(first.text)
        elif isinstance(first, EndCall):  # a refused call: its message, then the end
            self._spawn(self._finish(first.reason, first.final_message))
        return self

    async def aclose(self, on_quiet: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop now (no final speech); what was being said is kept as heard. Idempotent.
        ``on_quiet``: see ``Dialogue``."""
        if not self._end.close():
            return
        for task in self._tasks.children:
            task.cancel()  # waited for last: our speech is cut first
        self._keypad.record_open()
        await self._messages.cut_all()
        if on_quiet is not None:
            await on_quiet()
        if self._conv is not None:
            await self._conv.aclose()
        self._end.end(CLOSED)
        await self._tasks.aclose()
        self._transcript.report(everything=True)  # what a card number might have gone on from

    # ── inputs (the TurnEngine surface) ────────────────────────────────────────────────
    def feed_audio(self, pcm: bytes) -> None:
        self.handover.feed(pcm)  # the pipeline's, should the session fail
        if self._end.over:
            return
        self._caller.feed(pcm)
        self._timer.heard(pcm)

    def feed_dtmf(self, digit: str) -> None:
        if self._end.over or self._conv is None or not self._keypad.enabled:
            return  # the keypad off: no barge-in, no entry, nothing for the model
        self._watch.key_pressed()
        self._keypad.press(digit)

    async def say(self, text: str) -> None:
        if not self._end.over:
            self._own_words.say(text)

    async def inject_context(
        self, text: str, trigger_response: bool = False, source: ContextSource = "api"
    ) -> None:
        if self._conv is not None and not self._end.over:
            now = self._wall()
            if source == SUPERVISOR:
                self._transcript.add(TranscriptEntry(SUPERVISOR, text, now, now))
                text = supervisor_note(text)
            else:  # the model's context, not the transcript: kept for a pipeline taking over
                self.context_notes.append(TranscriptEntry("system", text, now, now))
            self._spawn(self._conv.inject_context(text, respond=trigger_response))

    async def end_call(self, final_message: str | None = None) -> None:
        if not self._end.over:
            self._spawn(self._finish(END_CALL_COMMAND, final_message))

    @property
    def history(self) -> list[ChatMessage]:
        return [
            ChatMessage(e.role, e.content)
            for e in self.transcript
            if e.role in ("system", "user", "assistant")
        ]

    # ── the provider's events ────────────────────────────────────────────────────────────
    async def _follow_provider(self, conv: RealtimeConversation) -> None:
        """Each of the provider's events to the part it is for, until the session ends."""
        try:
            async for event in conv:
                if not self._end.ending:
                    await self._provider_event(conv, event)
        finally:
            self._session_over = True
        raise ProviderError("the speech-to-speech session ended")

    async def _provider_event(self, conv: RealtimeConversation, event: RealtimeEvent) -> None:
        handing_over = self.handover.enabled
        match event:
            case RealtimeAudio(pcm=pcm):
                if not self._watch.caller_speaking:
                    self.handover.unanswered.answered()
                await self._messages.reply_audio(pcm)
            case RealtimeTranscript(role="assistant", text=delta):
                self._messages.reply_text(delta)
            case RealtimeTranscript(role="user", text=text):
                self.handover.unanswered.transcribed()
                if text.strip():
                    self._watch.activity()
                    now = self._wall()
                    self._transcript.add(TranscriptEntry("user", text.strip(), now, now))
            case RealtimeSpeechStarted():
                self.events.emit(SpeechStarted(self._wall()))
                self._watch.caller_started()
                self.handover.unanswered.started()
                await self._barge_in(conv)
            case RealtimeSpeechStopped():
                self.events.emit(SpeechEnded(self._wall()))
                self.events.emit(TurnCommitted(spoken=True))  # the provider answers it now
                self._watch.caller_stopped()
                self.handover.unanswered.stopped()
                self._answer.awaiting()
                self._timer.decided(self._cut_offs.take())
                self._keypad.turn_ended()  # an open entry too: one reply for both
                self._answer.cover_dead_air()
            case RealtimeResponseDone(status=status):
                if status == "failed" and handing_over:
                    raise ProviderResponseError("realtime: a response failed")
                if (reply := self._messages.reply_done()) is not None:
                    self._spawn(self._messages.settle_played(reply), speech=True)
            case RealtimeFunctionCall() as call:
                self.handover.unanswered.answered()
                self._spawn(self._function_calls.carry_out(conv, call))
            case RealtimeError(code=code, kind=kind):
                if kind == "server_error" and handing_over:
                    raise ProviderResponseError(f"realtime: server error {code}")
                log.info("realtime provider error event: %s", code)

    async def _barge_in(self, conv: RealtimeConversation) -> None:
        """The caller took the floor: the model's reply and our own speech stop."""
        await conv.cancel_response()
        await self._interruptible.stop()
        if heard := await self._messages.cut_all():
            self.events.emit(ReplyInterrupted(heard))

    def _busy(self) -> bool:
        """Something is said, the model's answer is awaited or one of its tools runs."""
        speaking = bool(self._assistant_audio.speeches)
        return speaking or self._messages.awaiting_reply or self._function_calls.running > 0

    # ── the end ──────────────────────────────────────────────────────────────────────────
    async def _finish(self, reason: str, final: str | None) -> None:
        if self._end.ending:
            return
        self._end.ending = True
        self._answer.stop()  # nothing to cover any more, nothing to wait for
        await self._end.finish(
            reason,
            final,
            pending=self._interruptible.running(),
            stop=self._stop_reply,
            quiet=self._messages.cut_all,
            say=self._messages.speak,
        )

    async def _stop_reply(self) -> None:
        if self._conv is not None:
            with contextlib.suppress(ProviderError):
                await self._conv.cancel_response()

    def _spawn(
        self, coro: Coroutine[object, object, None], *, speech: bool = False
    ) -> asyncio.Task[None] | None:
        """A task of the call; a ``speech`` one (saying or finishing a reply) a barge-in cuts."""
        if self._end.closed:
            coro.close()
            return None
        return self._interruptible.spawn(coro) if speech else self._tasks.spawn(coro)

    def _spawn_speech(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None] | None:
        return self._spawn(coro, speech=True)

    def _limit_reached(self, end: EndCall) -> None:
        self._spawn(self._finish(end.reason, end.final_message))

    def _assistant_ended(self) -> None:
        self._spawn(self._finish(ASSISTANT_ENDED_CALL, None))

    def hand_over(self, member: str) -> None:
        """The call goes on with its squad's ``member`` (the model's ``handoff``, an
        operator's): this dialogue ends (``HANDED_OVER``) once what is being said was said;
        the first handoff stands."""
        if self.handed_over_to is None and not self._end.over:
            self.handed_over_to = member
            self._spawn(self._finish(HANDED_OVER, None))

    def _task_failed(self, exc: Exception) -> None:
        session_over = self._session_over or (self._conv is not None and self._conv.ended)
        if self.handover.takes_over(exc, session_over=session_over):
            self._answer.stop()  # nothing to cover any more, nothing to wait for
            self._spawn(self.handover.fail(exc))
            return
        self._spawn(self._finish(failure_reason(exc), self.config.fallback_message))
