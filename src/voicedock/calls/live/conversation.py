"""A live call: one connected ``CallMedia`` driving one dialogue (``pipeline/dialogue/``).

    async with pbx.call_media(call_id, media_format="ulaw") as media:   # or MediaSession.connect
        live = LiveConversation(media, call.assistant_config, LiveOptions(context=call.context))
        live.events.listen(store, TranscriptKept)   # what it tells: its events
        result = await live.run()          # until the conversation or the media ends

``LiveConversation`` opens the call's dialogue (the turn engine, or the speech-to-speech one
when the assistant's provider is one, going on with a pipeline when its session fails if the
assistant names one) on the call's speech providers, feeds it the caller
(``caller_audio.py``: their audio decoded and resampled to the VAD rate, and their DTMF), and
the assistant's speech goes out through a ``MediaSink``. ``first_message`` is spoken as soon as
the dialogue starts (the media is connected once the call is answered). It implements the
engine's ``LiveCall`` hook: say, inject-context and end-call go to the dialogue; a transfer is
prepared by ``transfer.py`` (the announcement, a warm transfer's briefing).

The call always ends with a hang-up request unless the media is already gone: a conversation
that ends by itself (end-call, silence timeout, provider failure after the spoken fallback) is
hung up after its last words were confirmed played; a lost media connection ends it with
``media-lost``. What happens is told on the call's events (``live.events``,
``pipeline/dialogue/events.py``): each final message as it is said (``TranscriptKept``,
``transcript_delivery.py``), the voicemail verdict, the consent outcome, a squad's handoffs,
and what its dialogue decides (the caller's speech and turns, the replies started and cut by a
barge-in, the tools called); every one is handed to its listeners before ``run()`` returns.
The call's result (``result.py``) holds the end reason, the transcript, per-turn latencies and
the post-call analysis.

Around the dialogue: the call's recording and its live listeners (``taps.py``), the
assistant's consent plan (``consent.py``: its message said first, the caller's key awaited,
the recording held until then, the first message after it), and on an outbound call that
asks for it the voicemail screening (``screening.py``): the callee's first seconds go to the
answering-machine detector, and the first message waits for its verdict (with a consent plan
the disclosure starts at once and says the first message itself); a call-screening assistant
hears the screening message, and the first message waits for the person behind it. Where
the call must disclose the AI (``disclosure.py``) and the assistant's opening does not, the
operator's disclosure is said before all of it. ``opening.py`` makes these parts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Self

from voicedock.aio import Closable, Supervisor, started
from voicedock.calls.live.call_dialogue import CallDialogues
from voicedock.calls.live.caller_audio import CallerInput
from voicedock.calls.live.config import analysis_plan, conversation_config
from voicedock.calls.live.opening import CallOpening
from voicedock.calls.live.options import LiveOptions as LiveOptions
from voicedock.calls.live.options import LiveParts as LiveParts
from voicedock.calls.live.providers import SpeechProviders as SpeechProviders
from voicedock.calls.live.providers import build_providers
from voicedock.calls.live.redacted_audio import redacted_stretches
from voicedock.calls.live.result import LiveCallResult as LiveCallResult
from voicedock.calls.live.result import live_call_result
from voicedock.calls.live.squad import SquadTools
from voicedock.calls.live.taps import CallTaps
from voicedock.calls.live.transcript_delivery import TranscriptDelivery
from voicedock.calls.live.transfer import prepare_live_transfer
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.ids import mask_call_id
from voicedock.errors import MediaError, PbxError
from voicedock.logs import current_call_id, describe
from voicedock.media.call_media import CallMedia
from voicedock.media.transport import CloseReason
from voicedock.pbx.base import TransferTarget
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.cut_offs import CutOffWatch
from voicedock.pipeline.dialogue.events import CallEvents
from voicedock.pipeline.dialogue.flow_run import FlowWatch
from voicedock.pipeline.dialogue.squad_dialogue import SquadDialogue
from voicedock.pipeline.dialogue.turn_engine import (
    INTERNAL_ERROR,
    PROVIDER_ERROR,
    ConversationConfig,
)
from voicedock.pipeline.frames import ChatMessage, ContextSource, TranscriptEntry
from voicedock.pipeline.providers.base import ProviderError
from voicedock.pipeline.tools import ToolExecutor, with_found
from voicedock.weak import weak_method

log = logging.getLogger("voicedock.calls")

MEDIA_LOST = "media-lost"
VAD_RATES = (8000, 16000)
_HANGUP_WAIT_S = 2.0


# The silence around a redacted message's audio in the recording, past its turn's edges.
class LiveTransferUnsupported(PbxError, NotImplementedError):
    """A transfer asked of the live conversation, which cannot hand calls over yet."""


class LiveConversation(Closable):
    """Runs one call's conversation over its media session; the engine's ``LiveCall``."""

    def __init__(
        self,
        media: CallMedia,
        assistant_config: AssistantConfig,
        options: LiveOptions | None = None,
        parts: LiveParts | None = None,
    ) -> None:
        """The call's settings and parts (``options.py``); what happens is told on
        ``events``, which its listeners subscribe to before the call starts."""
        self._media, self._assistant_config = media, assistant_config
        self._options = options or LiveOptions()
        self._parts = parts = parts or LiveParts()
        self._owns_events = parts.events is None
        self.events = parts.events or CallEvents()
        self._cut_off_watch, self._flow = CutOffWatch(self.events), FlowWatch(self.events)
        self._providers = parts.providers
        rate = media.format.sample_rate
        self.sample_rate = rate if rate in VAD_RATES else 16000
        # Its dialogue, and each squad member's it hands over to (``call_dialogue.py``).
        self._dialogues = _dialogues(self)
        self._analysis_plan = analysis_plan(assistant_config)
        self._conversation: Dialogue | None = None
        # A failing task ends the call (it never cancels its siblings).
        self._tasks = Supervisor("live call", log, on_error=weak_method(self._task_failed))
        self._taps = CallTaps(media, parts.recorder, parts.secure_keypad)
        self.listen_tap = self._taps.listen  # the call's live listeners (``calls/listening.py``)
        self._delivery = TranscriptDelivery(self.events)
        # The consent window, the voicemail screening and the AI disclosure (``opening.py``).
        config, self._tools = _offered(assistant_config, self.sample_rate, self._options, parts)
        self._opening = _opening(self, config)
        self._config = self._opening.config
        if self._config.redactor is not None:  # its words silenced in the recording
            self._taps.keep_timeline()
        self._consent, self._screening = self._opening.consent, self._opening.screening
        self._caller = _caller_input(self)
        self._ended = asyncio.Event()
        self._closed = self._hung_up = False  # _hang_up ran (once is enough)
        self._close_lock = asyncio.Lock()
        self.end_reason: str | None = None
        self.result: LiveCallResult | None = None

    # ── lifecycle ────────────────────────────────────────────────────────────────────────
    async def __aenter__(self) -> Self:
        await self._tasks.start()
        return await started(self, self._start)

    async def _start(self) -> None:
        self._dialogues.begin()  # the call's clock (a squad's too)
        if self._owns_events:
            await self.events.start()
        try:
            if self._providers is None:
                self._providers = await build_providers(self._assistant_config)
        except ProviderError as exc:
            # Nothing can speak the fallback; end at once rather than hold a silent line.
            log.warning("call providers unavailable: %s", type(exc).__name__)
            self._end(PROVIDER_ERROR)
            return
        plan = self._providers.pipeline  # a speech-to-speech call's: its fallback's engines
        stt = self._providers.stt or (plan.stt if plan is not None else None)
        if self._screening is not None:  # it reads a long greeting for a screener's words
            self._screening.transcribe_with(stt)
        if (menu := self._opening.menu) is not None:  # it reads the line, asks the model
            menu.use(stt, self._providers.llm or (plan.llm if plan else None), self._parts.keys)
        conversation = self._dialogues.first(self._providers, self._config, self._tools)
        try:
            await conversation.__aenter__()
        except ProviderError as exc:  # the speech-to-speech session did not open
            log.warning("call provider unavailable: %s", type(exc).__name__)
            self._end(PROVIDER_ERROR)
            return
        self._conversation = conversation
        self._taps.start()
        self._tasks.spawn(self._hear(conversation))
        self._tasks.spawn(self._caller.keys(conversation))
        self._tasks.spawn(self._follow(conversation))
        self._opening.start(conversation, self._tasks.spawn)

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
        """End the call now if it still runs: stop speaking, hang up, analyse (idempotent);
        then every event told was handed to its listeners (the call's own bus)."""
        async with self._close_lock:
            if self._closed:
                return
            self._closed = True
            try:
                await self._wind_down()
            finally:
                if self._owns_events:
                    await self.events.aclose()

    async def _wind_down(self) -> None:
        self._end("closed")
        if (keypad := self._parts.secure_keypad) is not None:
            keypad.close()  # an open entry ends: its tool returns
        conversation = self._conversation
        if conversation is not None:
            # Hung up as soon as nothing is being said: the caller's last words are
            # transcribed after, not while they wait on an open line.
            await conversation.aclose(on_quiet=self._hang_up)
        await self._hang_up()  # no-op if done above
        self.listen_tap.end("call-ended")
        if self._consent is not None:
            # An answer still awaited: decided before the held transcript and recording.
            self._consent.close()
        await self._tasks.aclose()
        if conversation is not None and self._taps.recording:
            stretches = await redacted_stretches(
                conversation.transcript,
                self._providers.stt if self._providers is not None else None,
                self._config.redactor,
                timeout_s=self._config.stt_timeout_s,
            )
            self._taps.silence_recording(stretches)
        for entry in conversation.transcript if conversation is not None else []:
            entry.audio = None  # a changed message's audio is kept for the recording only
        recording_duration = await self._taps.close_recording()
        assert self.end_reason is not None
        self.result = await live_call_result(
            self.end_reason,
            conversation,
            self._providers.llm if self._providers is not None else None,
            self._analysis_plan,
            check=self._parts.structured_data_check,
            recording_duration_seconds=recording_duration,
            answering_machine=self._screening.verdict if self._screening is not None else None,
            redact=self._config.redact if self._config.redactor is not None else None,
            consent=self._consent.outcome if self._consent is not None else None,
            transcribed=self._consent is None or self._consent.transcribed,
            disclosure=self._opening.disclosure,
            flow=self._flow.progress,
        )
        if self._parts.providers is None and self._providers is not None:
            await self._providers.aclose()  # the call's own
        await self._dialogues.aclose()  # the squad members' providers

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
        to its end; for a warm transfer the agent's briefing in ``target.extra``
        (``transfer.py``)."""
        if (conversation := self._running()) is None or self._providers is None:
            return  # the call is ending: the PBX transfer alone decides
        await prepare_live_transfer(
            conversation,
            self._media,
            self._providers,
            self.history,
            target,
            announcement,
            summary,
            context=self._config.context,
        )

    async def hand_over(self, member: str) -> None:
        """An operator's handoff: the call goes on with its squad's ``member`` once what is
        being said was said (dropped while a handoff is under way or the call ends)."""
        conversation, squad = self._running(), self._parts.squad
        if not isinstance(conversation, SquadDialogue) or squad is None:
            return
        if member != squad.call.speaking and conversation.hand_over(member):
            squad.call.asked(member)

    def stop_recording(self) -> None:
        """A transfer takes the caller off this media: the recording ends here."""
        self._taps.stop_recording()

    # ── tasks ────────────────────────────────────────────────────────────────────────────
    async def _hear(self, conversation: Dialogue) -> None:
        await self._caller.hear(conversation)
        if self._media_lost and not self._ended.is_set():  # not the close our hang-up caused
            shown = mask_call_id(current_call_id() or "-")
            log.warning("call %s: media lost (%s)", shown, self._media.close_reason)
            self._end(MEDIA_LOST)

    async def _follow(self, conversation: Dialogue) -> None:
        reason = await conversation.wait_ended()
        if self._screening is not None:
            reason = self._screening.end_reason(reason)
        self._end(MEDIA_LOST if self._media_lost else reason)

    # ── helpers ──────────────────────────────────────────────────────────────────────────
    @property
    def _media_lost(self) -> bool:
        return self._media.close_reason in (CloseReason.PEER, CloseReason.BROKEN)

    def _task_failed(self, _exc: Exception) -> None:
        self._end(INTERNAL_ERROR)

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
        hang_up = self._parts.hang_up
        if self._media.closed and (hang_up is None or self.end_reason == MEDIA_LOST):
            return
        try:
            if hang_up is not None:
                await hang_up()
            else:
                await self._media.hangup(close_wait=_HANGUP_WAIT_S)
        except (MediaError, PbxError) as exc:
            log.warning("hang-up request failed: %s", describe(exc))


def _offered(
    assistant_config: AssistantConfig, rate: int, options: LiveOptions, parts: LiveParts
) -> tuple[ConversationConfig, ToolExecutor | None]:
    """The call's dialogue configuration and its tools: a squad's first member's, where the
    call runs a squad."""
    config = conversation_config(
        assistant_config, rate, context=options.context, base=options.config
    )
    config = dataclasses.replace(config, tools=with_found(config.tools, parts.tools))
    squad = parts.squad
    if squad is None:
        return config, parts.tools
    return squad.offered(config, squad.call.member), SquadTools(squad.call, parts.tools)


def _opening(live: LiveConversation, config: ConversationConfig) -> CallOpening:
    """What the call says and hears first: the consent window, the voicemail screening and
    the AI disclosure (``opening.py``)."""
    return CallOpening(
        config,
        live._assistant_config,
        live.sample_rate,
        live._options,
        end=weak_method(live._end),  # its parts keep it: the call is not kept alive by them
        tasks=live._tasks,
        recorder=live._parts.recorder,
        events=live.events,
        transcript=live._delivery,
    )


def _caller_input(live: LiveConversation) -> CallerInput:
    """Where the caller's audio and keys go: the taps, the screening, the consent window,
    the secure keypad."""
    return CallerInput(
        live._media,
        live.sample_rate,
        live._taps,
        live._screening or live._opening.menu,
        consent=live._consent,
        secure=live._parts.secure_keypad,
    )


def _dialogues(live: LiveConversation) -> CallDialogues:
    """The call's dialogue on its providers, and each squad member's it hands over to."""
    return CallDialogues(
        live._media, live.events, live._options, live._parts.squad, live.sample_rate
    )
