"""``CallRunner``: the live conversation of every answered call, from answer to stored record.

The Service hands ``runner.handle_pbx_event`` to the PBX as its event sink: the one path of
every PBX event. Each goes to the engine first (``CallEngine.apply_pbx_event``), which returns
the call's record after it; when an ANSWERED leaves the call in progress and the PBX carries
media (``MediaPbx``), the runner starts the call's task under its supervisor with that record
(not read again):

    async with pbx.call_media(call_id, media_format=...) as media:
        LiveConversation(media, ...) runs until the conversation, the caller or the media ends
    engine.record_live_call(call_id, record)      # always, exactly once per attached call

The runner attaches itself to the engine as the call's ``LiveCall`` the moment the call is
answered (before the media is open), so the end-of-call report waits for the record even if
the caller hangs up while the media is still being set up; commands arriving that early are
replayed on the conversation once it runs. A call the runner cannot serve (media would not
open, providers failed, a crash) is hung up with a reason: never left open and silent. One
call's failure never reaches another call's task.

Speech is synthesized once per node and ahead of time (``[speech] presynthesis``, default on):
the runner owns the node's ``NodeSynthesis`` (synthesis pool and cache,
``pipeline/synthesis.py``), the engine tells it of each call whose assistant is known before
the answer (an outbound call as it is placed, an inbound call once its assistant is chosen),
and the call's first message is synthesized while it rings (by the call's TTS alone: no STT
or LLM is made before the answer), in a task of the runner's
supervisor holding a ``Presynthesis`` until the call's conversation ends, the call ends
unanswered or the ring time is over. Every answered call's local TTS goes through the cache
and pool, so the greeting's first sentence is usually ready when the media leg is up.

What an assistant's analysis plan extracts after a call is checked against the organization's
schema in the runner's ``SchemaChecks`` (``pipeline/schema_checks.py``): worker processes,
started with the warm-up and kept warm, each killed and replaced at a deadline, queues per
organization served in turn; closed with the runner, after the calls' records.

Speech is recognized in one pool per node too (``[speech] recognition_pool``, default on): the
runner owns the node's ``NodeRecognition`` (``pipeline/recognition.py``), through which every
answered call's offline Whisper transcribes, finals before interims, and the
``SpeechAdmission`` that refuses new calls while transcriptions wait too long for it
(``calls/admission.py``; the engine asks it before placing or accepting a call).

While the store is unavailable (another process holds the SQLite file, a PostgreSQL failover)
nothing is lost and nothing of a call is reordered: its PBX events (each with its follow-up
here), the conversation's transcript turns, the end reason and the final record are writes of
the call in one ``WriteBacklog``, retried in the order they happened until the store is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from voicedock.aio import Supervisor, first_of
from voicedock.calls.admission import SpeechAdmission
from voicedock.calls.assistants.key_refs import with_provider_keys
from voicedock.calls.commands import API_END_CALL
from voicedock.calls.control import Transfer
from voicedock.calls.engine import CallEngine, EventApplied
from voicedock.calls.live.providers import build_providers_closing_on_error, build_tts
from voicedock.calls.live.record import LiveRecord, TranscriptTurn
from voicedock.calls.offline_speech import operator_settings, recognition_threads
from voicedock.calls.recordings import recording_file, recording_name, wants_recording
from voicedock.calls.transitions import REMOTE_HANGUP, SERVICE_RESTART, TRANSFERRED
from voicedock.calls.voicemail import voicemail_settings
from voicedock.config import Settings
from voicedock.domain.audio import CALL_MEDIA_FORMATS
from voicedock.domain.ids import mask_call_id
from voicedock.domain.records import Call, CallMessage, CallStatus, Direction, utcnow
from voicedock.domain.usage import SpokenTurn, speech_usage
from voicedock.egress import Egress
from voicedock.egress.settings import egress_guard
from voicedock.errors import (
    MediaError,
    PbxError,
    ProviderError,
    StoreUnavailable,
    VoicedockError,
)
from voicedock.logs import bind_call_id, call_context, describe
from voicedock.media.listen import ListenTap
from voicedock.media.output_totals import OutputTotals
from voicedock.pbx.base import (
    MediaPbx,
    Pbx,
    PbxEvent,
    PbxEventKind,
    PbxHealth,
    RoutingPbx,
    TransferTarget,
)
from voicedock.pipeline.frames import ContextSource
from voicedock.pipeline.providers.base import Tts
from voicedock.pipeline.providers.registry import create_stt, create_tts
from voicedock.pipeline.recognition import NodeRecognition
from voicedock.pipeline.schema_checks import SchemaChecks
from voicedock.pipeline.synthesis import NodeSynthesis
from voicedock.pipeline.synthesis_cache import SynthesisCache
from voicedock.pipeline.worker_pool import WorkerPool
from voicedock.store.backlog import WriteBacklog
from voicedock.store.base import Store

if TYPE_CHECKING:  # the audio pipeline is imported when the first call is answered
    from voicedock.calls.live.conversation import LiveCallResult, LiveConversation
    from voicedock.calls.live.providers import SpeechProviders
    from voicedock.calls.tools.executor import CallTools, ToolServer
    from voicedock.media.pacer import PacerStats
    from voicedock.pipeline.conversation import ConversationConfig

log = logging.getLogger("voicedock.calls")

PROVIDER_ERROR = "provider-error"  # as the conversation names it
MEDIA_ERROR = "media-error"  # the call's media could not be opened
RUNNER_ERROR = "internal-error"
SHUTDOWN = "shutdown"  # voicedock stopped while the call ran
# A transfer moves the caller away from our media (FreeSWITCH: uuid_bridge, uuid_transfer):
# the media closes before the PBX reports the transfer's outcome; we wait this long for it
# rather than hang up the caller as a media loss.
TRANSFER_SETTLE_S = 10.0
# The media may drop (or fail while it opens) before the PBX link when the PBX itself dies
# (FreeSWITCH: the audio stream's websocket first, the restart seen on reconnect): unless the
# PBX confirms the call still up, we wait this long for its word (a crash ends the call
# ``pbx-restart``) before ending it as a media loss, counted from when the PBX link is up (a
# hang-up could not be sent while it is down), at most ``PBX_DOWN_WAIT_S`` in all. A caller
# the PBX still has is hung up at once, never kept waiting.
PBX_VERDICT_S = 10.0
PBX_DOWN_WAIT_S = 60.0
_VERDICT_POLL_S = 0.25
_STILL_UP_CONFIRM_S = 1.0  # a call the PBX still has after a media loss, asked again after
# Start-up waits this long at most for the default voice to be loaded and run once.
WARM_UP_WAIT_S = 30.0
# A first message synthesized ahead is kept this long past the ring time, for an answer late
# to reach us; then what is not synthesized yet is dropped (a cached sentence stays cached).
PRESYNTHESIS_GRACE_S = 30.0
# Events after which the call has left voicedock: its conversation ends without a hang-up.
_GONE_REASONS = {
    PbxEventKind.HANGUP: REMOTE_HANGUP,
    PbxEventKind.TRANSFERRED: TRANSFERRED,
    PbxEventKind.PBX_RESTARTED: "pbx-restart",
}

ProvidersFactory = Callable[[Mapping[str, Any]], Awaitable["SpeechProviders"]]
LiveAction = Callable[["LiveConversation"], Awaitable[None]]


class RunningCall:
    """One answered call's ``LiveCall`` while the runner serves it (before and after the
    conversation exists)."""

    def __init__(
        self, call_id: str, *, resumed: bool = False, answered_at: float | None = None
    ) -> None:
        self.call_id = call_id
        self.resumed = resumed  # adopted after a restart: a failed start is "service-restart"
        # ``time.monotonic()`` when voicedock heard the answer, when the media connected, and
        # the media's output counters (its first speech frame): the call's ``timings``.
        self.answered_at = answered_at
        self.media_connected_at: float | None = None
        self.media_stats: PacerStats | None = None
        self.speech_names: tuple[str | None, str | None] = (None, None)  # STT, TTS providers
        self.live: LiveConversation | None = None
        self._live_ready = asyncio.Event()
        self.remote_gone = False  # the caller hung up: nothing to hang up any more
        self.gone = asyncio.Event()  # set with remote_gone
        self.transferring = False  # a transfer was asked for on the live call
        self.hung_up = False  # we asked the PBX to hang up
        self.media_open = False
        self.stop_reason: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.setting_up = False  # the task runs (a task cancelled before it ran does nothing)
        self._early: list[LiveAction] = []

    # -- the engine's LiveCall ------------------------------------------------------------
    async def say(self, content: str) -> None:
        await self._forward(lambda live: live.say(content))

    async def inject_context(
        self, content: str, trigger_response: bool, source: ContextSource = "api"
    ) -> None:
        await self._forward(lambda live: live.inject_context(content, trigger_response, source))

    def listen_tap(self) -> ListenTap | None:
        """The call's live listeners' tap, once its conversation runs (``calls/listen.py``)."""
        return self.live.listen_tap if self.live is not None else None

    async def end_call(self, message: str | None) -> None:
        if self.live is None and message is None:
            # Nothing to finish saying: end now rather than once the media leg is open (it
            # may never open; the caller must not wait on it). A final message waits for it.
            self.stop(API_END_CALL)
            return
        await self._forward(lambda live: live.end_call(message))

    async def transfer(
        self, target: TransferTarget, announcement: str | None, summary: str | None
    ) -> None:
        if self.live is None:  # nothing to announce it with: the PBX transfers the caller
            from voicedock.calls.live.conversation import LiveTransferUnsupported

            raise LiveTransferUnsupported("the conversation has not started")
        self.transferring = True
        await self.live.transfer(target, announcement, summary)
        self.live.stop_recording()  # the caller leaves our media: the recording ends here

    async def _forward(self, action: LiveAction) -> None:
        if self.live is not None:
            await action(self.live)
        else:
            self._early.append(action)

    # -- the runner's side ----------------------------------------------------------------
    async def started(self, live: LiveConversation) -> None:
        self.live = live
        self._live_ready.set()
        if self.stop_reason is not None:
            live.end(self.stop_reason)
        early, self._early = self._early, []
        for action in early:
            await action(live)

    async def wait_started(self) -> bool:
        """Until the conversation runs (``True``) or the call's task ended first (``False``)."""
        assert self.task is not None
        await first_of(self._live_ready.wait(), asyncio.wait((self.task,)))  # never raises
        return self.live is not None and self.stop_reason is None and not self.task.done()

    def remote_left(self, reason: str) -> None:
        """The PBX reports the caller gone (hung up, transferred): nothing to hang up."""
        self.remote_gone = True
        self.gone.set()
        self.stop(reason)

    def stop(self, reason: str) -> None:
        """End the call's conversation (or its start) as soon as possible."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.live is not None:
            self.live.end(reason)
        elif self.task is not None and self.setting_up:
            self.task.cancel()  # still opening the media: nothing to wind down
        # else the task has not run yet: it finds ``stop_reason`` set and only hangs up


class CallRunner:
    def __init__(
        self,
        engine: CallEngine,
        pbx: Pbx,
        store: Store,
        settings: Settings,
        *,
        providers: ProvidersFactory | None = None,
        conversation: ConversationConfig | None = None,
        close_timeout: float = 10.0,
        tool_server: ToolServer | None = None,
        egress: Egress | None = None,
    ) -> None:
        """``providers`` builds a call's STT/LLM/TTS (default: the registry's, from the
        assistant configuration, connecting through ``egress``: the guard of ``settings``
        unless given); ``conversation`` holds dialogue defaults (endpointing...);
        ``tool_server`` runs the assistants' webhook tools."""
        self._tool_server = tool_server
        self._egress = egress or egress_guard(settings)
        self._engine = engine
        self._pbx = pbx
        self._store = store
        self._settings = settings
        self._providers = providers
        # Dialogue defaults given here win over [speech.endpointing] (tests set their own).
        self._conversation = conversation or _dialogue_defaults(settings)
        self._close_timeout = close_timeout
        self._calls: dict[str, RunningCall] = {}
        self.media_totals = OutputTotals()  # outbound media counters, for metrics
        # The calls' writes waiting for an unavailable store, in order per call.
        self.backlog = WriteBacklog()
        # The calls' tasks and the warm-up; a call's task never fails (its failure is its
        # record's end reason).
        self._tasks = Supervisor("call runner", log)
        self._closed = False
        # The node's synthesis pool and cache (None: [speech] presynthesis = false, the
        # greeting synthesized after the answer by the call's own TTS).
        speech = settings.speech
        self.synthesis: NodeSynthesis | None = None
        if speech.presynthesis:
            self.synthesis = NodeSynthesis(
                WorkerPool(
                    speech.synthesis_workers or None,
                    name="synthesis",
                    max_waiting=speech.synthesis_queue,
                    max_spare=settings.limits.previews_per_node,  # previews' sentences
                ),
                SynthesisCache(speech.synthesis_cache_mb * 1024 * 1024),
            )
            engine.presynthesizer = self
        # The node's recognition pool (every call's offline STT, finals first) and the
        # admission control reading it (None: [speech] recognition_pool = false).
        self.recognition: NodeRecognition | None = None
        self.admission: SpeechAdmission | None = None
        if speech.recognition_pool:
            workers, _threads = recognition_threads(speech)
            self.recognition = NodeRecognition(
                WorkerPool(workers, name="recognition"),
                admission_wait_s=speech.admission_wait_ms / 1000,
            )
            self.admission = SpeechAdmission(self.recognition, speech)
            engine.admission = self.admission
        # The node's schema workers: every call's analysis checks the fields its model
        # extracted there, in processes killed at a deadline, fair between organizations.
        self.schema_checks = SchemaChecks()
        # Calls whose first message is being prepared: set to release it.
        self._prepared: dict[str, asyncio.Event] = {}

    @property
    def media_pbx(self) -> MediaPbx | None:
        return self._pbx if isinstance(self._pbx, MediaPbx) else None

    def running(self, call_id: str) -> RunningCall | None:
        return self._calls.get(call_id)

    async def wait_finished(self, call_id: str) -> None:
        """Until the call's task has stored its record (tests, shutdown)."""
        running = self._calls.get(call_id)
        if running is not None and running.task is not None:
            await asyncio.wait([running.task])

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, *, warm_up: bool = False) -> None:
        """Start; with ``warm_up`` (only when the PBX carries media), load the default speech
        models and run each once so the first call is not slower than the tenth: the voice
        before this returns (at most ``WARM_UP_WAIT_S``; the service connects the PBX after,
        so the first call's greeting never waits behind it), the STT in the background (a
        caller speaks after the greeting; Whisper may take long to assemble on a first start),
        and the schema workers that check what the calls' analyses extract."""
        if not self._tasks.running and not self._closed:
            await self._tasks.start()
            await self.backlog.start()
            if warm_up and self.media_pbx is not None:
                speech = self._settings.speech
                voice = self._tasks.spawn(self._warm_up("tts_config", create_tts, speech.tts))
                if voice is not None:
                    await asyncio.wait({voice}, timeout=WARM_UP_WAIT_S)  # else goes on
                self._tasks.spawn(self._warm_up("stt_config", create_stt, speech.stt))
                await self.schema_checks.start()  # its workers start at the lowest priority

    async def _warm_up(self, key: str, create: Callable[..., Any], engine: str) -> None:
        try:
            provider: Any = create(
                {"provider": engine, **operator_settings(key, engine, self._settings.speech)},
                self._egress.for_providers(),
            )
            warm = getattr(provider, "warm_up", None)
            if warm is not None:
                await warm()  # loaded, and run once (Piper's first synthesis is slower)
            await provider.aclose()
        except Exception as exc:  # noqa: BLE001 - a call will report it; start-up goes on
            log.warning("speech %s not warmed up: %s", engine, type(exc).__name__)

    async def __aenter__(self) -> CallRunner:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Hang up every running call, store its record, stop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        running = list(self._calls.values())
        for call in running:
            call.stop(SHUTDOWN)
        tasks = [c.task for c in running if c.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._close_timeout)
            for task in late:
                task.cancel()
        await self.backlog.aclose(self._close_timeout)  # the records the calls just handed in
        for prepared in self._prepared.values():
            prepared.set()
        try:
            await self._tasks.drain()  # the warm-up, the late calls' wind-down
        finally:
            await self._tasks.aclose()
            if self.synthesis is not None:
                await self.synthesis.pool.aclose()
            if self.recognition is not None:
                await self.recognition.aclose()
            await self.schema_checks.aclose()

    # -- the first message ahead of the answer (the engine's Presynthesizer) --------------
    def prepare(self, call: Call, ring_seconds: float) -> None:
        """Synthesize ``call``'s first message while it rings (see the module's doc)."""
        text = call.assistant_config.get("first_message")
        if (
            self.synthesis is None
            or self.media_pbx is None
            or self._closed
            or not self._tasks.running
            or not isinstance(text, str)
            or not text.strip()
            or call.id in self._prepared
            or call.id in self._calls
        ):
            return
        release = self._prepared[call.id] = asyncio.Event()
        hold = max(0.0, ring_seconds) + PRESYNTHESIS_GRACE_S
        if self._tasks.spawn(self._presynthesize(call, text, release, hold)) is None:
            self._prepared.pop(call.id, None)

    def drop(self, call_id: str) -> None:
        """The call ended (or will not ring): its prepared speech is not needed."""
        release = self._prepared.get(call_id)
        if release is not None:
            release.set()

    async def _presynthesize(
        self, call: Call, text: str, release: asyncio.Event, hold: float
    ) -> None:
        assert self.synthesis is not None
        try:
            try:
                tts = await self._voice_of(await self._with_keys(call))
            except ProviderError as exc:  # the call reports it once answered
                why = describe(exc)
                log.info("call %s: nothing synthesized ahead: %s", mask_call_id(call.id), why)
                return
            try:
                held = self.synthesis.prepare(tts, call.organization_id, text)
                try:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(hold):
                            await release.wait()
                finally:
                    held.release()
            finally:
                with contextlib.suppress(Exception):
                    await tts.aclose()
        finally:
            if self._prepared.get(call.id) is release:
                del self._prepared[call.id]

    async def _voice_of(self, assistant_config: Mapping[str, Any]) -> Tts:
        """The call's TTS alone (no STT or LLM is needed to synthesize ahead); with a
        ``providers`` factory (tests), the TTS of what it makes, the rest closed."""
        if self._providers is None:
            speech_keys = self._speech_keys
            return build_tts(
                assistant_config, self._settings.speech, self._egress, speech_keys=speech_keys
            )
        providers = await self._providers(assistant_config)
        for other in (providers.stt, providers.llm, providers.realtime):
            if other is not None:
                with contextlib.suppress(Exception):
                    await other.aclose()
        return providers.tts

    # -- the PBX event sink ---------------------------------------------------------------
    async def handle_pbx_event(self, event: PbxEvent) -> None:
        """The PBX's event sink (``PbxEventSink``): the event applied by the engine, in order
        per call behind the call's earlier writes (retried while the store is unavailable),
        then the live conversation started or stopped; never raises into the adapter."""
        heard_at = time.monotonic()  # an answer's: the call's timings start here
        with call_context(event.call_id or None):  # the call's task started here inherits it
            try:
                if event.kind in _GONE_REASONS:
                    self._remote_gone(event)  # the caller is gone now, stored or not yet
                await self.backlog.submit(
                    event.call_id,
                    lambda: self._apply(event, heard_at),
                    what=f"PBX event {event.kind} of call {mask_call_id(event.call_id)}",
                )
            except Exception:
                log.exception(
                    "call %s: could not apply PBX event %s", mask_call_id(event.call_id), event.kind
                )

    async def _apply(self, event: PbxEvent, heard_at: float) -> None:
        """The event in the engine (one attempt: ``StoreUnavailable`` is retried by the
        backlog), then its follow-up here, on the call as the engine left it."""
        applied: EventApplied | None = None
        try:
            applied = await self._engine.apply_pbx_event(event)
        except StoreUnavailable:
            raise
        except Exception:
            log.exception(
                "call %s: could not apply PBX event %s", mask_call_id(event.call_id), event.kind
            )
        try:
            answered = applied.to_serve if applied is not None else None
            if answered is not None:
                self._serve(answered, heard_at)
            elif event.kind in _GONE_REASONS:
                self._remote_gone(event)  # a conversation started by a late-applied answer
        except Exception:
            log.exception("call %s: live call not started or stopped", mask_call_id(event.call_id))

    def _remote_gone(self, event: PbxEvent) -> None:
        targets = list(self._calls.values()) if not event.call_id else []
        if event.call_id and (one := self._calls.get(event.call_id)) is not None:
            targets.append(one)
        for running in targets:
            running.remote_left(_GONE_REASONS[event.kind])
        if event.call_id:
            self.drop(event.call_id)  # ended unanswered: its first message is not needed
        else:
            for prepared in self._prepared.values():
                prepared.set()

    def _serve(self, call: Call, heard_at: float) -> None:
        """Start the conversation of ``call``, answered and in progress as the engine just
        stored it (or found it: a repeated answer), unless it is served already."""
        media_pbx = self.media_pbx
        if media_pbx is None or self._closed or not self._tasks.running or call.id in self._calls:
            return
        running = RunningCall(call.id, answered_at=heard_at)
        self._calls[call.id] = running
        self._engine.attach_live_call(call.id, running)  # from here on a record is owed
        running.task = self._tasks.spawn(self._run(running, call, media_pbx))

    async def resume(
        self,
        call: Call,
        assistant_config: Mapping[str, Any],
        messages: Sequence[CallMessage],
    ) -> bool:
        """``CallResumer``: serve a call the PBX adopted after a restart (``calls/recovery``)
        with ``assistant_config`` (the resume line first, the earlier turns seeded), its
        transcript going on after ``messages``. ``True`` once the conversation runs; ``False``
        (or cancelled) when it cannot start: the call is then hung up, its end reason
        ``service-restart``."""
        media_pbx = self.media_pbx
        if media_pbx is None or self._closed or not self._tasks.running or call.id in self._calls:
            return False
        current = await self._store.get_call(None, call.id)
        if current is None or current.status is not CallStatus.IN_PROGRESS:
            return False  # the caller hung up since the PBX adopted the call: nothing to serve
        if self._closed or not self._tasks.running or call.id in self._calls:
            return False
        running = RunningCall(call.id, resumed=True)
        self._calls[call.id] = running
        self._engine.continue_messages(call.id, messages)
        self._engine.attach_live_call(call.id, running)  # from here on a record is owed
        resumed = dataclasses.replace(call, assistant_config=dict(assistant_config))
        with call_context(call.id):
            running.task = self._tasks.spawn(self._run(running, resumed, media_pbx))
        try:
            return await running.wait_started()
        except asyncio.CancelledError:
            running.stop(SERVICE_RESTART)
            raise

    # -- one call -------------------------------------------------------------------------
    async def _run(self, running: RunningCall, call: Call, media_pbx: MediaPbx) -> None:
        bind_call_id(call.id)  # this task and the conversation's tasks log the call id
        record: LiveRecord | None = None
        failure: str | None = None
        running.setting_up = True
        try:
            if running.stop_reason is None:  # else stopped before this task ran: hang up only
                result = await self._converse(running, call, media_pbx)
                record = self._live_record(running, call, result) if result is not None else None
            else:
                failure = running.stop_reason
        except asyncio.CancelledError:
            # Stopped before the conversation ran (hang-up during set-up, shutdown): not an
            # error, and the record below must still be stored.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            failure = running.stop_reason or SHUTDOWN
        except ProviderError as exc:
            log.warning("call %s: providers unavailable: %s", mask_call_id(call.id), describe(exc))
            failure = PROVIDER_ERROR
        except Exception:
            log.exception("call %s: live call failed", mask_call_id(call.id))
            failure = RUNNER_ERROR if running.media_open else MEDIA_ERROR
        finally:
            if record is None and running.live is not None and running.live.result is not None:
                # the conversation ended, the exit failed
                record = self._live_record(running, call, running.live.result)
        if running.resumed and running.live is None and failure is not None:
            failure = SERVICE_RESTART  # resuming failed: the call ends as if not resumed
        try:
            from voicedock.calls.live.conversation import MEDIA_LOST

            if failure is None and running.transferring and _reason(running) == MEDIA_LOST:
                # The transfer took the caller off our media: its outcome ends the call.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TRANSFER_SETTLE_S):
                        await running.gone.wait()
            elif failure in (MEDIA_ERROR, RUNNER_ERROR) or (
                failure is None and _reason(running) == MEDIA_LOST
            ):
                await self._await_pbx_verdict(running)  # the PBX may have gone with the media
            if not running.hung_up and not running.remote_gone:
                await self._hang_up(running, failure or _reason(running))
            await self.backlog.submit(  # after the call's earlier writes
                call.id,
                lambda: self._engine.store_live_record(call.id, record),
                what=f"live call record of call {mask_call_id(call.id)}",
            )
        except Exception:
            log.exception("call %s: live call record not stored", mask_call_id(call.id))
        finally:
            self._calls.pop(call.id, None)
            self.drop(call.id)

    async def _await_pbx_verdict(self, running: RunningCall) -> None:
        """After a media loss: until the PBX reports the call gone (hung up, lost in a restart)
        or confirms it still up (ours to hang up as ``media-lost``): at most ``PBX_VERDICT_S``
        with the PBX link up, ``PBX_DOWN_WAIT_S`` in all; not past voicedock's shutdown."""
        clock = asyncio.get_running_loop().time
        verdict_by = clock() + PBX_VERDICT_S
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PBX_DOWN_WAIT_S):
                while not (running.remote_gone or self._closed) and clock() < verdict_by:
                    if not self._health_of(running.call_id).can_place_calls:
                        verdict_by = clock() + PBX_VERDICT_S  # no hang-up could be sent: wait
                    elif await self._still_up(running.call_id) and await self._stays_up(running):
                        return  # the media alone was lost
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(_VERDICT_POLL_S):
                            await running.gone.wait()

    async def _stays_up(self, running: RunningCall) -> bool:
        """The call is still at the PBX ``_STILL_UP_CONFIRM_S`` later: a PBX shutting down
        closes the media streams a moment before it hangs up their calls."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_STILL_UP_CONFIRM_S):
                await running.gone.wait()
        return not running.remote_gone and await self._still_up(running.call_id)

    def _health_of(self, call_id: str) -> PbxHealth:
        """The links of the PBX server carrying the call (several servers: its own)."""
        if isinstance(self._pbx, RoutingPbx):
            return self._pbx.call_health(call_id)
        return self._pbx.health()

    async def _still_up(self, call_id: str) -> bool:
        """The PBX has the call (``False``: gone, or the PBX could not be asked)."""
        try:
            return call_id in await self._pbx.live_call_ids()
        except PbxError as exc:
            log.info("call %s: not found at the PBX: %s", mask_call_id(call_id), describe(exc))
            return False

    async def _converse(
        self, running: RunningCall, call: Call, media_pbx: MediaPbx
    ) -> LiveCallResult | None:
        from voicedock.calls.live.config import with_echo_settings
        from voicedock.calls.live.conversation import LiveConversation
        from voicedock.media.recording import CallRecorder

        media_format = await self.media_format(call)
        config = await self._with_keys(call)
        providers = await (self._providers or self._default_providers)(config)
        running.speech_names = (providers.stt_name, providers.tts_name)
        if self.synthesis is not None:  # the local voice through the node's cache and pool
            providers.tts = self.synthesis.speech_for(providers.tts, call.organization_id)
        if self.recognition is not None and providers.stt is not None:  # Whisper: the pool
            providers.stt = self.recognition.speech_for(providers.stt)
        recording = self._recording_name(call)
        outbound = call.direction is Direction.OUTBOUND
        try:
            async with (
                media_pbx.call_media(call.id, media_format=media_format) as media,
                self.media_totals.track(media.pacer.stats),
            ):
                running.media_open = True
                running.media_connected_at = time.monotonic()
                running.media_stats = media.pacer.stats
                recorder = None
                if recording is not None:
                    path = recording_file(self._settings.recordings, recording)
                    assert path is not None  # a name is only given with a directory
                    rate = media.format.sample_rate
                    recorder = CallRecorder(path, rate, file_format=path.suffix[1:])
                try:
                    live = LiveConversation(
                        media,
                        call.assistant_config,
                        context=call.context,
                        providers=providers,
                        config=with_echo_settings(self._conversation, self._settings.speech.echo),
                        hangup=lambda: self._hang_up(running, _reason(running)),
                        on_transcript=lambda entry: self._transcript_turn(call.id, entry),
                        recorder=recorder,
                        voicemail=voicemail_settings(call.assistant_config, outbound=outbound),
                        on_answering_machine=lambda v: self._answering_machine(call.id, v),
                        tools=self._call_tools(running, call),
                        structured_data_check=self.schema_checks.for_organization(
                            call.organization_id
                        ),
                    )
                except BaseException:
                    if recorder is not None:  # else the conversation closes it
                        with contextlib.suppress(MediaError):
                            await recorder.aclose()
                    raise
                async with live:
                    await running.started(live)
                    await live.wait_ended()
                return live.result
        finally:
            await providers.aclose()

    def _recording_name(self, call: Call) -> str | None:
        """Where the call is recorded (under the directory), if it is."""
        if not wants_recording(call.assistant_config):
            return None
        if not self._settings.recordings.directory:
            log.warning(
                "call %s: recording asked for, [recordings] directory unset", mask_call_id(call.id)
            )
            return None
        return recording_name(self._settings.recordings, call.organization_id, call.id)

    def _live_record(self, running: RunningCall, call: Call, result: LiveCallResult) -> LiveRecord:
        record = result.record()
        if record.recording_duration_seconds is not None:
            record.recording_path = self._recording_name(call)
        record.timings = _timings(running)
        stt_name, tts_name = running.speech_names
        record.speech_usage = speech_usage(
            (SpokenTurn(t.role, t.content, t.started_at, t.ended_at) for t in result.transcript),
            stt_provider=stt_name,
            tts_provider=tts_name,
        )
        return record

    async def _answering_machine(self, call_id: str, verdict: dict[str, Any]) -> None:
        await self.backlog.submit(
            call_id,
            lambda: self._engine.store_answering_machine(call_id, verdict),
            what=f"answering-machine verdict of call {mask_call_id(call_id)}",
        )

    def _call_tools(self, running: RunningCall, call: Call) -> CallTools | None:
        from voicedock.calls.tools.config import assistant_tools
        from voicedock.calls.tools.executor import CallTools

        tools = assistant_tools(call.assistant_config)
        if not tools:
            return None

        def transfer(command: Transfer) -> None:
            self._tasks.spawn(self._tool_transfer(running, call, command))

        return CallTools(call, tools, server=self._tool_server, pbx=self._pbx, transfer=transfer)

    async def _tool_transfer(self, running: RunningCall, call: Call, command: Transfer) -> None:
        """The transfer a ``transfer_call`` tool asked for; refused or failed, the model is
        told and speaks again."""
        try:
            await self._engine.control(call.organization_id, call.id, command)
        except VoicedockError as exc:
            log.info("call %s: tool transfer failed: %s", mask_call_id(call.id), describe(exc))
            note = f"The transfer to {command.destination} did not work: {exc}"
            await running.inject_context(note, trigger_response=True)

    async def _with_keys(self, call: Call) -> Mapping[str, Any]:
        """The call's configuration with its organization's referenced provider keys opened
        (in memory only: the call's stored snapshot keeps the references)."""
        settings = self._settings
        return await with_provider_keys(
            self._store, call.organization_id, call.assistant_config, settings.byok, settings.speech
        )

    async def _default_providers(self, assistant_config: Mapping[str, Any]) -> SpeechProviders:
        return await build_providers_closing_on_error(
            assistant_config, self._settings.speech, self._egress, speech_keys=self._speech_keys
        )

    @property
    def _speech_keys(self) -> bool:
        """Whether a call's section without a key of its own may use the operator's
        ``[speech]`` key: not where the operator requires organizations' own keys."""
        return self._settings.byok.mode != "required"

    async def _transcript_turn(self, call_id: str, entry: TranscriptTurn) -> None:
        now = utcnow()  # when it was said, even if stored later
        await self.backlog.submit(
            call_id,
            lambda: self._engine.store_transcript_turn(call_id, entry, now),
            what=f"transcript turn of call {mask_call_id(call_id)}",
        )

    async def _hang_up(self, running: RunningCall, reason: str) -> None:
        """Store why voicedock ends the call, then ask the PBX to hang it up."""
        if running.remote_gone or running.hung_up:
            return
        running.hung_up = True
        with contextlib.suppress(Exception):  # queued before the hang-up it explains
            await self.backlog.submit(
                running.call_id,
                lambda: self._engine.set_end_reason(running.call_id, reason),
                what=f"end reason of call {mask_call_id(running.call_id)}",
            )
        try:
            await self._pbx.hangup(running.call_id, "normal")
        except Exception as exc:  # noqa: BLE001 - reconciliation settles a call left behind
            log.warning("call %s: hang-up failed: %s", mask_call_id(running.call_id), describe(exc))

    async def media_format(self, call: Call) -> str:
        """The assistant's ``media_format`` (or ``codec``) if set, else the trunk's codec."""
        config = call.assistant_config
        for key in ("media_format", "codec"):
            if config.get(key) in CALL_MEDIA_FORMATS:
                return str(config[key])
        if call.number_id is not None:
            number = await self._store.get_phone_number(call.organization_id, call.number_id)
            trunk = await self._store.get_trunk(number.trunk) if number is not None else None
            if trunk is not None and trunk.codec in CALL_MEDIA_FORMATS:
                return trunk.codec
        return "ulaw"


def _timings(running: RunningCall) -> dict[str, Any] | None:
    """``Call.timings``: ms from the answer to the media connected and to the first audio
    written (None: a resumed call, whose answer was another run's, or no media)."""
    answered, connected = running.answered_at, running.media_connected_at
    if answered is None or connected is None:
        return None
    first = running.media_stats.first_speech_written if running.media_stats else None
    return {
        "media_connected_ms": round((connected - answered) * 1000),
        "first_audio_ms": None if first is None else round((first - answered) * 1000),
    }


def _reason(running: RunningCall) -> str:
    live = running.live
    if live is not None and live.end_reason is not None:
        return live.end_reason
    return running.stop_reason or "closed"


def _dialogue_defaults(settings: Settings) -> ConversationConfig:
    """The dialogue settings every call starts from: ``[speech.endpointing]``'s timing."""
    from voicedock.calls.live.config import with_endpointing_settings

    return with_endpointing_settings(None, settings.speech.endpointing)
