"""A live call: one connected ``CallMedia`` driving one ``Conversation``.

    async with pbx.call_media(call_id, media_format="ulaw") as media:   # or MediaSession.connect
        live = LiveConversation(media, call.assistant_config, context=call.context)
        result = await live.run()          # until the conversation or the media ends

The caller's audio (µ-law, A-law or slin* frames) is decoded and resampled to the VAD rate and
fed to the conversation with the caller's DTMF; the assistant's speech goes out through a
``MediaSink``. ``first_message`` is spoken as soon as the conversation starts (the media is
connected once the call is answered). ``LiveConversation`` implements the engine's ``LiveCall``
hook (say, inject-context, end-call; transfer raises ``LiveTransferUnsupported``).

The call always ends with a hang-up request unless the media is already gone: a conversation
that ends by itself (end-call, silence timeout, provider failure after the spoken fallback) is
hung up after its last words were confirmed played; a lost media connection ends it with
``media-lost``. The result holds the end reason, the transcript, per-turn latencies and the
post-call analysis.

With a ``CallRecorder`` the call is recorded from this media stream: the caller's frames as
they arrive, the assistant's as the pacer sends them (``Pacer.tap``), until the call ends or a
transfer takes the caller away (``stop_recording``). The same two taps feed ``listen_tap``
(``media/listen.py``), the call's live listeners, while anyone listens; it ends with the call.

With answering-machine detection (``voicemail``, outbound calls) the callee's first seconds go
to the ``AnsweringMachineDetector`` instead of the conversation, and the first message waits
for its verdict: ``human`` or ``unknown`` → the first message and the conversation as usual;
``machine`` → in ``detect`` mode the call ends ``voicemail`` at once; in
``detect-and-leave-message`` mode voicedock waits for the beep (or the greeting's end), speaks
the voicemail message to its end and hangs up, ``voicemail`` too. The verdict and its evidence
go to ``on_answering_machine`` as soon as they are known, and into the call's result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import numpy as np

from voicedock.aio import Supervisor
from voicedock.calls.live.config import analysis_plan, conversation_config
from voicedock.calls.live.providers import SpeechProviders as SpeechProviders
from voicedock.calls.live.providers import build_providers as build_providers
from voicedock.calls.live.providers import build_providers_closing_on_error
from voicedock.calls.live.record import LiveRecord
from voicedock.calls.voicemail import LEAVE_MESSAGE, VOICEMAIL, VoicemailSettings
from voicedock.domain.ids import mask_call_id
from voicedock.errors import MediaError, PbxError
from voicedock.logs import current_call_id, describe
from voicedock.media.call_media import CallMedia, DirectAudio
from voicedock.media.codecs import Int16Array, Resampler, decode
from voicedock.media.listen import ListenTap
from voicedock.media.recording import CallRecorder, RecordingError
from voicedock.media.sink import MediaSink
from voicedock.media.transport import CloseReason
from voicedock.pbx.base import TransferTarget
from voicedock.pipeline.analysis import AnalysisResult, analyze
from voicedock.pipeline.answering_machine import (
    MACHINE,
    AmdConfig,
    AmdDecision,
    AnsweringMachineDetector,
    GreetingEnded,
)
from voicedock.pipeline.conversation import (
    INTERNAL_ERROR,
    PROVIDER_ERROR,
    Conversation,
    ConversationConfig,
)
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.frames import ChatMessage, ContextSource, TranscriptEntry, TurnLatency
from voicedock.pipeline.providers.base import ProviderConfigError, ProviderError
from voicedock.pipeline.realtime_dialogue import RealtimeDialogue
from voicedock.pipeline.schema_checks import StructuredDataCheck
from voicedock.pipeline.tools import ToolExecutor

log = logging.getLogger("voicedock.calls")

MEDIA_LOST = "media-lost"
VAD_RATES = (8000, 16000)
_ANALYSIS_TIMEOUT_S = 15.0
_HANGUP_WAIT_S = 2.0


class LiveTransferUnsupported(PbxError, NotImplementedError):
    """A transfer asked of the live conversation, which cannot hand calls over yet."""


class CallerAudio:
    """Caller frames in the session's wire format → 16-bit PCM at the VAD rate (streaming)."""

    def __init__(self, media: CallMedia, target_rate: int) -> None:
        self._format = media.format
        self.sample_rate = target_rate
        rate = media.format.sample_rate
        self._resampler = Resampler(rate, target_rate) if rate != target_rate else None

    def convert(self, frame: bytes) -> bytes:
        return self.convert_samples(decode(self._format, frame))

    def convert_samples(self, samples: np.ndarray[Any, Any]) -> bytes:
        """Decoded caller samples (the session's rate) → PCM at the VAD rate."""
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        return np.asarray(samples, dtype="<i2").tobytes()


@dataclass(slots=True)
class LiveCallResult:
    end_reason: str
    transcript: list[TranscriptEntry]
    latencies: list[TurnLatency]
    analysis: AnalysisResult
    recording_duration_seconds: float | None = None  # None: not recorded
    answering_machine: dict[str, Any] | None = None  # the detection's verdict and evidence

    def latency_records(self) -> list[dict[str, Any]]:
        """Per-turn latencies as stored with the call (``Call.latency``)."""
        return [dataclasses.asdict(latency) for latency in self.latencies]

    def record(self) -> LiveRecord:
        """What the engine stores with the call (``LiveRecords.store_live_record``)."""
        return LiveRecord(
            end_reason=self.end_reason,
            transcript=self.transcript,
            latency=self.latency_records(),
            summary=self.analysis.summary,
            analysis_result=self.analysis.to_dict(),
            recording_duration_seconds=self.recording_duration_seconds,
            answering_machine=self.answering_machine,
        )


class LiveConversation:
    """Runs one call's conversation over its media session; the engine's ``LiveCall``."""

    def __init__(
        self,
        media: CallMedia,
        assistant_config: Mapping[str, Any],
        *,
        context: str | None = None,
        providers: SpeechProviders | None = None,
        config: ConversationConfig | None = None,
        hangup: Callable[[], Awaitable[None]] | None = None,
        on_transcript: Callable[[TranscriptEntry], Awaitable[None]] | None = None,
        recorder: CallRecorder | None = None,
        voicemail: VoicemailSettings | None = None,
        on_answering_machine: Callable[[dict[str, Any]], Coroutine[Any, Any, None]] | None = None,
        tools: ToolExecutor | None = None,
        structured_data_check: StructuredDataCheck | None = None,
    ) -> None:
        """``providers`` default to the registry's, built from ``assistant_config`` (and then
        closed with the call); ``hangup`` defaults to asking the PBX through the media session.
        ``on_transcript`` is awaited with each final message, in order; all of them are
        delivered before ``run()`` returns. ``tools`` carries out the model's calls of the
        assistant's tools. ``structured_data_check`` checks what the end-of-call analysis
        extracts against the plan's schema (the node's schema workers, for the call's
        organization; without it the extracted fields are dropped, not checked).
        """
        self._media = media
        self._assistant_config = assistant_config
        self._owns_providers = providers is None
        self._providers = providers
        rate = media.format.sample_rate
        self.sample_rate = rate if rate in VAD_RATES else 16000
        self._config = conversation_config(
            assistant_config, self.sample_rate, context=context, base=config
        )
        self._hangup = hangup
        self._on_transcript = on_transcript
        self._recorder = recorder
        self._recording_duration: float | None = None
        # The call's live listeners: fed from the recording's taps while anyone listens.
        self.listen_tap = ListenTap(rate, on_active=self._listening)
        self._voicemail = voicemail
        self._on_answering_machine = on_answering_machine
        self._answering_machine: dict[str, Any] | None = None
        self._left_voicemail = False  # the voicemail message was asked for: ends "voicemail"
        self._first_message = self._config.first_message
        if voicemail is not None:  # the first message waits for the detection's verdict
            self._config = dataclasses.replace(self._config, first_message=None)
        self._tools = tools
        self._structured_data_check = structured_data_check
        self._analysis_plan = analysis_plan(assistant_config)
        self._turns: asyncio.Queue[TranscriptEntry | None] = asyncio.Queue()
        self._turn_writer: asyncio.Task[None] | None = None
        self._conversation: Dialogue | None = None
        # A failing task ends the call (it never cancels its siblings).
        self._tasks = Supervisor("live call", log, on_error=lambda _exc: self._end(INTERNAL_ERROR))
        self._ended = asyncio.Event()
        self._closed = False
        self._hung_up = False  # _hang_up ran (once is enough)
        self._close_lock = asyncio.Lock()
        self.end_reason: str | None = None
        self.result: LiveCallResult | None = None

    # ── lifecycle ────────────────────────────────────────────────────────────────────────
    async def __aenter__(self) -> Self:
        await self._tasks.start()
        try:
            await self._start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def _start(self) -> None:
        try:
            if self._providers is None:
                self._providers = await build_providers_closing_on_error(self._assistant_config)
        except ProviderError as exc:
            # Nothing can speak the fallback; end at once rather than hold a silent line.
            log.warning("call providers unavailable: %s", type(exc).__name__)
            self._end(PROVIDER_ERROR)
            return
        conversation = self._dialogue(self._providers)
        if self._on_transcript is not None:
            self._turn_writer = self._tasks.spawn(self._write_turns(self._on_transcript))
        try:
            await conversation.__aenter__()
        except ProviderError as exc:  # the speech-to-speech session did not open
            log.warning("call provider unavailable: %s", type(exc).__name__)
            self._end(PROVIDER_ERROR)
            return
        self._conversation = conversation
        if self._recorder is not None or self.listen_tap.active:
            self._media.pacer.tap = self._tap_sent
        self._tasks.spawn(self._feed_audio(conversation))
        self._tasks.spawn(self._feed_dtmf(conversation))
        self._tasks.spawn(self._follow(conversation))

    def _dialogue(self, providers: SpeechProviders) -> Dialogue:
        on_transcript = self._turns.put_nowait if self._on_transcript is not None else None
        sink = MediaSink(self._media)
        if providers.realtime is not None:
            return RealtimeDialogue(
                speech=providers.realtime,
                tts=providers.tts,
                sink=sink,
                config=self._config,
                on_transcript=on_transcript,
                tools=self._tools,
            )
        if providers.stt is None or providers.llm is None:
            raise ProviderConfigError("a pipeline call needs STT and an LLM")
        return Conversation(
            stt=providers.stt,
            llm=providers.llm,
            tts=providers.tts,
            sink=sink,
            config=self._config,
            on_transcript=on_transcript,
            tools=self._tools,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def run(self) -> LiveCallResult:
        """Run the call to its end (hang-up included) and return its result."""
        async with self:
            await self.wait_ended()
        assert self.result is not None
        return self.result

    @property
    def transcript(self) -> list[TranscriptEntry]:
        """What was said so far (assistant messages cut to what was heard)."""
        return list(self._conversation.transcript) if self._conversation is not None else []

    @property
    def history(self) -> list[ChatMessage]:
        """The model's context so far (without the system prompt, unsaid messages or tool
        calls and results)."""
        history = self._conversation.history if self._conversation is not None else []
        # What was said: tool calls and their results stay with the model's own context.
        return [m for m in history if m.content and m.role != "tool" and not m.tool_calls]

    def end(self, reason: str) -> None:
        """End the call from outside (the caller hung up, the service stops); ``run()``
        then closes it. The first reason given wins."""
        self._end(reason)

    async def wait_ended(self) -> str:
        await self._ended.wait()
        assert self.end_reason is not None
        return self.end_reason

    async def aclose(self) -> None:
        """End the call now if it still runs: stop speaking, hang up, analyse (idempotent)."""
        async with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._end("closed")
            conversation = self._conversation
            if conversation is not None:
                # Hung up as soon as nothing is being said: the caller's last words are
                # transcribed after, not while they wait on an open line.
                await conversation.aclose(on_quiet=self._hang_up)
            await self._hang_up()  # no-op if done above
            self.listen_tap.end("call-ended")
            await self._drain_turns()
            await self._tasks.aclose()
            await self._close_recording()
            self.result = await self._result(conversation)
            if self._owns_providers and self._providers is not None:
                await self._providers.aclose()

    # ── the engine's LiveCall hook ───────────────────────────────────────────────────────
    # A command that arrives while the call is ending has nothing left to act on: the engine
    # already stored it as a call event, so it is dropped here rather than failed.
    async def say(self, content: str) -> None:
        if (conversation := self._running()) is not None:
            await conversation.say(content)

    async def inject_context(
        self, content: str, trigger_response: bool, source: ContextSource = "api"
    ) -> None:
        if (conversation := self._running()) is not None:
            await conversation.inject_context(content, trigger_response, source)

    async def end_call(self, message: str | None) -> None:
        """Finish the current words, speak ``message`` to the end, then hang up.

        Returns at once; ``wait_ended()`` tells when the call is over.
        """
        if (conversation := self._running()) is not None:
            await conversation.end_call(message)

    async def transfer(
        self, target: TransferTarget, announcement: str | None, summary: str | None
    ) -> None:
        """Prepare the PBX transfer that follows (``CommandRunner``): ``announcement`` spoken
        to its end; for a warm transfer the agent's briefing in ``target.extra``.

        A pipeline conversation speaks the announcement itself, so it is in the transcript (and
        the call's messages) like anything else the caller heard; the briefing is written
        meanwhile.
        """
        if (conversation := self._running()) is None or self._providers is None:
            return  # the call is ending: the PBX transfer alone decides
        from voicedock.calls.transfers.briefing import prepare_transfer

        spoken = None
        if announcement and isinstance(conversation, Conversation):
            spoken, announcement = conversation.announce(announcement), None
        briefing = prepare_transfer(
            self._media,
            self._providers.tts,
            self._providers.llm,
            self.history,
            target,
            announcement,  # None: the conversation speaks it, while the briefing is written
            summary,
            context=self._config.context,
        )
        if spoken is None:
            await briefing
            return
        async with asyncio.TaskGroup() as tg:
            tg.create_task(spoken)
            await briefing

    def stop_recording(self) -> None:
        """A transfer takes the caller off this media: the recording ends here."""
        if self._recorder is not None:
            self._recorder.stop()

    # ── tasks ────────────────────────────────────────────────────────────────────────────
    async def _feed_audio(self, conversation: Dialogue) -> None:
        caller = CallerAudio(self._media, self.sample_rate)
        fmt, recorder, listeners = self._media.format, self._recorder, self.listen_tap
        detector = None
        if self._voicemail is not None:
            detector = AnsweringMachineDetector(
                AmdConfig(sample_rate=self.sample_rate),
                wait_for_greeting=self._voicemail.mode == LEAVE_MESSAGE,
            )

        def recorded(frame: bytes) -> Int16Array:
            samples = decode(fmt, frame)
            if recorder is not None:
                recorder.caller(samples)
            if listeners.active:
                listeners.caller(samples)
            return samples

        def hear(frame: bytes) -> None:
            samples = recorded(frame)
            if not self._left_voicemail:  # a machine's audio never reaches the conversation
                conversation.feed_audio(caller.convert_samples(samples))

        if detector is None and isinstance(self._media, DirectAudio):
            await self._hear_directly(self._media, hear)
        else:
            async for frame in self._media.inbound_audio():
                if detector is not None and not detector.done:
                    pcm = caller.convert_samples(recorded(frame))
                    for event in detector.process(pcm):
                        await self._answering_machine_event(event, conversation)
                    continue
                hear(frame)
        if self._media_lost and not self._ended.is_set():  # not the close our hang-up caused
            shown = mask_call_id(current_call_id() or "-")
            log.warning("call %s: media lost (%s)", shown, self._media.close_reason)
            self._end(MEDIA_LOST)

    async def _hear_directly(self, media: DirectAudio, hear: Callable[[bytes], None]) -> None:
        """Caller frames handed to ``hear`` as they arrive (no task woken per frame) until the
        media ends; a failure of ``hear`` is raised here, as the reading loop would."""
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def consume(frame: bytes) -> None:
            if failed.done():
                return
            try:
                hear(frame)
            except Exception as exc:  # noqa: BLE001 - raised below, in the call's task
                failed.set_exception(exc)

        media.deliver_audio_to(consume)
        ended = asyncio.ensure_future(_until_ended(self._media))
        try:
            await asyncio.wait((failed, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if failed.done():
            failed.result()

    async def _write_turns(self, deliver: Callable[[TranscriptEntry], Awaitable[None]]) -> None:
        while (entry := await self._turns.get()) is not None:
            try:
                await deliver(entry)
            except Exception:
                # The record at the end holds the whole transcript; one lost event is no reason
                # to end the call.
                log.exception("transcript turn not delivered")

    async def _drain_turns(self) -> None:
        if self._turn_writer is not None:
            self._turns.put_nowait(None)
            await asyncio.wait([self._turn_writer])

    async def _answering_machine_event(
        self, event: AmdDecision | GreetingEnded, conversation: Dialogue
    ) -> None:
        voicemail = self._voicemail
        assert voicemail is not None
        if isinstance(event, AmdDecision):
            self._answering_machine = {"result": event.result, "evidence": event.evidence()}
            log.info("call: answering-machine detection: %s (%s)", event.result, event.reason)
            if self._on_answering_machine is not None:
                self._tasks.spawn(self._on_answering_machine(dict(self._answering_machine)))
            if event.result != MACHINE:
                if self._first_message:
                    await conversation.say(self._first_message)
            elif voicemail.mode != LEAVE_MESSAGE or not voicemail.message:
                self._left_voicemail = True
                self._end(VOICEMAIL)
            else:
                self._left_voicemail = True  # the conversation hears no more of the machine
            return
        # The greeting is over (beep, silence): the message is recorded from now on.
        assert self._answering_machine is not None
        self._answering_machine["evidence"]["message_at_ms"] = event.at_ms
        self._answering_machine["evidence"]["beep_hz"] = event.beep_hz
        if voicemail.message:
            await conversation.end_call(voicemail.message)

    def _tap_sent(self, frame: bytes, at: float | None) -> None:
        """The pacer's tap: a frame the caller hears, to the recording and the listeners."""
        samples = decode(self._media.format, frame)
        if self._recorder is not None:
            self._recorder.assistant(samples, at)
        if self.listen_tap.active:
            self.listen_tap.assistant(samples, at)

    def _listening(self, active: bool) -> None:
        """The first listener came, or the last one left: the pacer's tap follows, unless
        the recording needs it anyway."""
        pacer = self._media.pacer
        if active and pacer.tap is None and self._conversation is not None:
            pacer.tap = self._tap_sent
        elif not active and self._recorder is None and pacer.tap == self._tap_sent:
            pacer.tap = None

    async def _close_recording(self) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        if self._media.pacer.tap == self._tap_sent and not self.listen_tap.active:
            self._media.pacer.tap = None
        try:
            self._recording_duration = round(await recorder.aclose(), 3)
        except RecordingError as exc:
            log.warning("call recording lost: %s", describe(exc))

    async def _feed_dtmf(self, conversation: Dialogue) -> None:
        async for digit in self._media.dtmf():
            conversation.feed_dtmf(digit)

    async def _follow(self, conversation: Dialogue) -> None:
        reason = await conversation.wait_ended()
        if self._left_voicemail and reason not in (PROVIDER_ERROR, INTERNAL_ERROR):
            reason = VOICEMAIL  # the voicemail message was spoken: the call ends as such
        self._end(MEDIA_LOST if self._media_lost else reason)

    # ── helpers ──────────────────────────────────────────────────────────────────────────
    @property
    def _media_lost(self) -> bool:
        return self._media.close_reason in (CloseReason.PEER, CloseReason.BROKEN)

    def _end(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
        self._ended.set()

    def _running(self) -> Dialogue | None:
        return None if self._ended.is_set() else self._conversation

    async def _hang_up(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        # Media closed under a running conversation: the caller hung up (the PBX reports it).
        # Closed once the call was ending for another reason (end-call, a timeout, while the
        # last words were transcribed), the line may still be up: it is ours to hang up.
        if self._media.closed and (self._hangup is None or self.end_reason == MEDIA_LOST):
            return
        try:
            if self._hangup is not None:
                await self._hangup()
            else:
                await self._media.hangup(close_wait=_HANGUP_WAIT_S)
        except (MediaError, PbxError) as exc:
            log.warning("hang-up request failed: %s", describe(exc))

    async def _result(self, conversation: Dialogue | None) -> LiveCallResult:
        transcript = list(conversation.transcript) if conversation is not None else []
        latencies = list(conversation.latencies) if conversation is not None else []
        llm = self._providers.llm if self._providers is not None else None
        # The model's answer is waited for at most _ANALYSIS_TIMEOUT_S; its structured data's
        # check is bounded by the node's schema workers (their wait and deadline).
        analysis = await analyze(
            transcript,
            llm,
            self._analysis_plan,
            check=self._structured_data_check,
            answer_timeout_s=_ANALYSIS_TIMEOUT_S,
        )
        assert self.end_reason is not None
        return LiveCallResult(
            self.end_reason,
            transcript,
            latencies,
            analysis,
            recording_duration_seconds=self._recording_duration,
            answering_machine=self._answering_machine,
        )


async def _until_ended(media: CallMedia) -> None:
    """Until ``media`` ends (its inbound iteration, once frames go elsewhere, only ends)."""
    async for _ in media.inbound_audio():
        pass
