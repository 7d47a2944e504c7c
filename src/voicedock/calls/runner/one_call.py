"""One answered call, from its answer to its stored record:

    async with pbx.call_media(call_id, media_format=...) as media:
        LiveConversation(media, ...) runs until the conversation, the caller or the media ends
    engine.records.store_live_record(call_id, record)   # always, exactly once per served call

A call that cannot be served (media would not open, providers failed, a crash) is hung up with
a reason: never left open and silent. Each write of the call (its transcript turns, the
answering-machine verdict, the end reason, the final record) is queued behind the call's
earlier ones in the runner's ``WriteBacklog``, retried while the store is unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Protocol

from voicedock.calls.compliance.ai_disclosure import disclosure_rule
from voicedock.calls.control import Transfer
from voicedock.calls.engine import CallEngine
from voicedock.calls.live.opening_language import greeted_in
from voicedock.calls.live.phone_menu import LegKeys, phone_menu_settings
from voicedock.calls.live.record import LiveRecord, TranscriptTurn
from voicedock.calls.recordings import recording_file, recording_name, wants_recording
from voicedock.calls.runner.call_speech import CallSpeech
from voicedock.calls.runner.node_speech import NodeSpeech
from voicedock.calls.runner.pbx_verdict import PbxVerdict
from voicedock.calls.runner.running_call import RunningCall
from voicedock.calls.runner.served import ServedCalls
from voicedock.calls.transitions import SERVICE_RESTART
from voicedock.calls.voicemail import voicemail_settings
from voicedock.config import Settings
from voicedock.domain.audio import CALL_MEDIA_FORMATS
from voicedock.domain.ids import mask_call_id
from voicedock.domain.records import Call, CallMessage, Direction, utcnow
from voicedock.domain.squads import CallMember
from voicedock.domain.usage import SpokenTurn, speech_usage
from voicedock.errors import MediaError, ProviderError, VoicedockError
from voicedock.logs import bind_call_id, describe
from voicedock.media.output_totals import OutputTotals
from voicedock.pbx.base import DtmfPbx, MediaPbx, Pbx
from voicedock.pipeline.fallback_plans.plan import Switch
from voicedock.store.backlog import Work, WriteBacklog
from voicedock.store.base import Store

if TYPE_CHECKING:  # the audio pipeline is imported when the first call is answered
    from voicedock.calls.live.conversation import LiveCallResult, SpeechProviders
    from voicedock.calls.live.squad import SquadMembers
    from voicedock.calls.tools.config import AssistantTool
    from voicedock.calls.tools.executor import CallTools, SecureKeys, ToolServer
    from voicedock.calls.tools.mcp import McpTools
    from voicedock.knowledge.search import KnowledgeSearch
    from voicedock.pipeline.dialogue.events import CallEvent, CallEvents
    from voicedock.pipeline.dialogue.turn_engine import ConversationConfig

log = logging.getLogger("voicedock.calls")

PROVIDER_ERROR = "provider-error"  # as the conversation names it
MEDIA_ERROR = "media-error"  # the call's media could not be opened
RUNNER_ERROR = "internal-error"
SHUTDOWN = "shutdown"  # voicedock stopped while the call ran
# A transfer moves the caller away from our media (FreeSWITCH: uuid_bridge, uuid_transfer):
# the media closes before the PBX reports the transfer's outcome; we wait this long for it
# rather than hang up the caller as a media loss.
TRANSFER_SETTLE_S = 10.0


async def media_format(store: Store, call: Call) -> str:
    """The format of the call's media leg: the assistant's ``media_format`` if set, else
    the codec of its number's trunk (the call's ``trunk``), else ``ulaw``."""
    chosen = call.assistant_config.media_format
    if chosen in CALL_MEDIA_FORMATS:
        return str(chosen)
    name = call.trunk  # its number's trunk, kept with the call as it was placed or arrived
    if name is None and call.number_id is not None:
        number = await store.get_phone_number(call.organization_id, call.number_id)
        name = None if number is None else number.trunk
    trunk = None if name is None else await store.get_trunk(name)
    if trunk is not None and trunk.codec in CALL_MEDIA_FORMATS:
        return trunk.codec
    return "ulaw"


class CallWatcher(Protocol):
    """Whoever hears every served call's events (the metrics): ``watch`` subscribes to the
    kinds it wants on the call's bus, before the call runs."""

    def watch(self, call: Call, events: CallEvents) -> None: ...


class OneCall:
    def __init__(
        self,
        engine: CallEngine,
        pbx: Pbx,
        store: Store,
        settings: Settings,
        *,
        backlog: WriteBacklog,
        served: ServedCalls,
        speech: NodeSpeech,
        call_speech: CallSpeech,
        conversation: ConversationConfig,
        media_totals: OutputTotals,
        tool_server: ToolServer | None = None,
        watchers: tuple[CallWatcher, ...] = (),
        mcp: McpTools | None = None,
        knowledge: KnowledgeSearch | None = None,
    ) -> None:
        """``conversation``: the dialogue defaults every call starts from (endpointing...);
        ``tool_server`` runs the assistants' webhook tools; ``watchers`` hear each call's
        events; ``mcp`` lists and calls the assistants' MCP servers' tools; ``knowledge``
        searches their knowledge bases (none: the calls search none)."""
        self._engine = engine
        self._pbx = pbx
        self._store = store
        self._settings = settings
        self._backlog = backlog
        self._served = served
        self._speech = speech
        self._call_speech = call_speech
        self._conversation = conversation
        self._media_totals = media_totals
        self._tool_server = tool_server
        self._watchers = watchers
        self._mcp = mcp
        self._knowledge = knowledge
        self._verdict = PbxVerdict(pbx, lambda: served.closing)

    def start(
        self,
        running: RunningCall,
        call: Call,
        media_pbx: MediaPbx,
        *,
        earlier: Sequence[CallMessage] | None = None,
    ) -> bool:
        """Serve ``call`` in the background with ``running`` as its live call, unless the
        runner is not started or the call is served already (``False``: nothing started). From
        here on the call's record is owed. ``earlier``: a call resumed after a restart, the
        messages the previous run stored, which its transcript goes on after."""
        served = self._served
        if not served.started or call.id in served:
            return False
        records = self._engine.records
        if earlier is not None:
            records.continue_messages(call.id, earlier)
        records.attach(call.id, running)
        served.serve(running, self.serve(running, call, media_pbx))
        return True

    async def serve(self, running: RunningCall, call: Call, media_pbx: MediaPbx) -> None:
        """Serve the call until it ends, then hand in its record (never raises)."""
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
            # Winding down: a stop no longer cancels the task (a hang-up's HANGUP reaches the
            # call again once stored), else the record owed below would never be stored.
            running.setting_up = False
            if record is None and running.live is not None and running.live.result is not None:
                # the conversation ended, the exit failed
                record = self._live_record(running, call, running.live.result)
        if running.resumed and running.live is None and failure is not None:
            failure = SERVICE_RESTART  # resuming failed: the call ends as if not resumed
        try:
            from voicedock.calls.live.conversation import MEDIA_LOST

            if failure is None and running.transferring and running.end_reason == MEDIA_LOST:
                # The transfer took the caller off our media: its outcome ends the call.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TRANSFER_SETTLE_S):
                        await running.gone.wait()
            elif failure in (MEDIA_ERROR, RUNNER_ERROR) or (
                failure is None and running.end_reason == MEDIA_LOST
            ):
                await self._verdict.wait(running)  # the PBX may have gone with the media
            if not running.hung_up and not running.remote_gone:
                await self._hang_up(running, failure or running.end_reason)
            records = self._engine.records
            await self._backlog.submit(  # after the call's earlier writes
                call.id,
                lambda: records.store_live_record(call.id, record),
                what=f"live call record of call {mask_call_id(call.id)}",
            )
        except Exception:
            log.exception("call %s: live call record not stored", mask_call_id(call.id))

    async def _converse(
        self, running: RunningCall, call: Call, media_pbx: MediaPbx
    ) -> LiveCallResult | None:
        from voicedock.pipeline.dialogue.events import CallEvents

        async with CallEvents() as events:  # the call's: what it tells, the record hears
            self._subscribe(events, call.id)
            for watcher in self._watchers:
                watcher.watch(call, events)
            return await self._live(running, call, media_pbx, events)

    async def _live(
        self, running: RunningCall, call: Call, media_pbx: MediaPbx, events: CallEvents
    ) -> LiveCallResult | None:
        from voicedock.calls.live.config import with_echo_settings
        from voicedock.calls.live.conversation import LiveConversation, LiveOptions, LiveParts
        from voicedock.calls.live.secure_keypad import SecureKeypad
        from voicedock.media.recording import CallRecorder

        # Read together: when many calls answer at once, each read waits for a turn of the
        # event loop, which their set-ups share.
        leg_format, organization = await asyncio.gather(
            media_format(self._store, call), self._store.get_organization(call.organization_id)
        )
        disclosure = disclosure_rule(self._settings.ai_disclosure, organization)

        providers = await self._call_speech.providers(
            await self._call_speech.keyed_config(call), on_switch=_told_on(events)
        )
        running.speech_names = (providers.stt_name, providers.tts_name)
        speech = self._speech
        providers = self._speech.pooled(providers, call.organization_id)
        config = call.assistant_config
        if providers.languages is not None and not running.resumed:  # a resumed call goes on
            opened = providers.languages.open_in(await self._call_speech.opening_language(call))
            config = greeted_in(config, opened)
        recording = self._recording_name(call)
        outbound = call.direction is Direction.OUTBOUND
        from voicedock.calls.tools.mcp import assistant_mcp_tools

        # The tools its MCP servers list now: none from one that fails (the call starts).
        found = await assistant_mcp_tools(self._mcp, call.organization_id, call.assistant_config)
        try:
            async with (
                media_pbx.call_media(call.id, media_format=leg_format) as media,
                self._media_totals.track(media.pacer.stats),
            ):
                running.media_opened(media.pacer.stats)
                recorder = None
                if recording is not None:
                    path = recording_file(self._settings.recordings, recording)
                    assert path is not None  # a name is only given with a directory
                    rate = media.format.sample_rate
                    recorder = CallRecorder(path, rate, file_format=path.suffix[1:])
                secure_keypad = SecureKeypad()  # opened by a collect_secure_digits tool
                try:
                    options = LiveOptions(
                        context=call.context,
                        config=with_echo_settings(self._conversation, self._settings.speech.echo),
                        voicemail=voicemail_settings(
                            call.assistant_config,
                            outbound=outbound,
                            business_name=call.business_name,
                            metadata=call.metadata,
                        ),
                        disclosure=disclosure,
                        phone_menu=phone_menu_settings(call.assistant_config, outbound=outbound),
                    )
                    parts = LiveParts(
                        providers=providers,
                        events=events,
                        hang_up=lambda: self._hang_up_served(call.id),
                        recorder=recorder,
                        tools=self._call_tools(call, secure_keypad, found=found, events=events),
                        structured_data_check=speech.schema_checks.for_organization(
                            call.organization_id
                        ),
                        secure_keypad=secure_keypad,
                        squad=self._squad_members(call, secure_keypad, events),
                        keys=_leg_keys(self._pbx, call.id),
                    )
                    live = LiveConversation(media, config, options, parts)
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
        record.timings = running.timings()
        record.provider_switches = running.provider_switches
        stt_name, tts_name = running.speech_names
        record.speech_usage = speech_usage(
            (
                SpokenTurn(t.role, t.content, t.started_at, t.ended_at, t.provider)
                for t in result.transcript
            ),
            stt_provider=stt_name,
            tts_provider=tts_name,
        )
        return record

    def _subscribe(self, events: CallEvents, call_id: str) -> None:
        """The call's record hears what it tells: each kept message, the voicemail verdict,
        a phone menu's steps, a knowledge search, the consent outcome, a handoff, a provider
        switch (counted at once; ``told_records.py``). Each kind has a listener of its own:
        the messages are stored in spoken order, and a verdict or an outcome never waits
        behind them (stored before the end it may cause)."""
        from voicedock.calls.runner.told_records import RECORDED
        from voicedock.pipeline.dialogue.events import ProviderSwitched, TranscriptKept

        def counted(_switched: ProviderSwitched) -> None:
            if (running := self._served.get(call_id)) is not None:
                running.provider_switches += 1

        events.subscribe(ProviderSwitched, counted)
        record = partial(self._record, call_id)
        for kind in (TranscriptKept, *RECORDED):
            events.listen(record, kind)

    async def _record(self, call_id: str, event: CallEvent) -> None:
        """One thing the call told, stored on its record."""
        from voicedock.calls.runner.told_records import record_write
        from voicedock.pipeline.dialogue.events import TranscriptKept

        if isinstance(event, TranscriptKept):
            await self._transcript_turn(call_id, event.entry)
        elif (write := record_write(self._engine.records, call_id, event)) is not None:
            await self._stored(call_id, *write)

    async def _stored(self, call_id: str, write: Work, what: str) -> None:
        """One of the call's records, written after the call's earlier writes (retried while
        the store is unavailable)."""
        await self._backlog.submit(call_id, write, what=f"{what} of call {mask_call_id(call_id)}")

    def _squad_members(
        self, call: Call, secure_keys: SecureKeys, events: CallEvents
    ) -> SquadMembers | None:
        """What the call's squad needs of the runner (None: the call has no squad): each
        member's providers made and pooled as the call's own (their switches told on the
        call's ``events``), its tools."""
        from voicedock.calls.live.squad import SquadCall, SquadMembers

        if call.squad is None:
            return None
        speech, organization_id = self._call_speech, call.organization_id
        on_switch = _told_on(events)

        async def providers(member: CallMember) -> SpeechProviders:
            keyed = await speech.keyed(organization_id, member.config)
            return self._speech.pooled(await speech.providers(keyed, on_switch), organization_id)

        def tools(member: CallMember) -> CallTools | None:
            return self._call_tools(call, secure_keys, member)

        return SquadMembers(SquadCall(call.squad), providers, tools)

    def _call_tools(
        self,
        call: Call,
        secure_keys: SecureKeys,
        member: CallMember | None = None,
        *,
        found: Sequence[AssistantTool] = (),
        events: CallEvents | None = None,
    ) -> CallTools | None:
        """The call's tools (``member``: a squad member's, else the call's assistant's, and
        ``found``: those its MCP servers listed as the call started); with the call's
        ``events``, its knowledge bases (told on them)."""
        from voicedock.calls.tools.config import assistant_tools
        from voicedock.calls.tools.executor import CallTools
        from voicedock.calls.tools.knowledge import CallKnowledge, knowledge_plan

        config = call.assistant_config if member is None else member.config
        tools = [*assistant_tools(config), *found]
        plan = knowledge_plan(config)
        knowledge = None
        if plan is not None and events is not None and self._knowledge is not None:
            knowledge = CallKnowledge(self._knowledge, call.organization_id, plan, events)
        if not tools and knowledge is None:
            return None

        def transfer(command: Transfer) -> None:
            self._served.spawn(self._tool_transfer(call, command))

        return CallTools(
            call,
            tools,
            server=self._tool_server,
            pbx=self._pbx,
            transfer=transfer,
            secure_keys=secure_keys,
            member=member,
            mcp=self._mcp,
            knowledge=knowledge,
        )

    async def _tool_transfer(self, call: Call, command: Transfer) -> None:
        """The transfer a ``transfer_call`` tool asked for; refused or failed, the model is
        told and speaks again (while the call is served)."""
        try:
            await self._engine.control.run(call.organization_id, call.id, command)
        except VoicedockError as exc:
            log.info("call %s: tool transfer failed: %s", mask_call_id(call.id), describe(exc))
            note = f"The transfer to {command.destination} did not work: {exc}"
            if (running := self._served.get(call.id)) is not None:
                await running.inject_context(note, trigger_response=True)

    async def _transcript_turn(self, call_id: str, entry: TranscriptTurn) -> None:
        now = utcnow()  # when it was said, even if stored later
        records = self._engine.records
        await self._backlog.submit(
            call_id,
            lambda: records.store_transcript_turn(call_id, entry, now),
            what=f"transcript turn of call {mask_call_id(call_id)}",
        )

    async def _hang_up_served(self, call_id: str) -> None:
        """The conversation of a served call hangs up, for the reason the call ends."""
        if (running := self._served.get(call_id)) is not None:
            await self._hang_up(running, running.end_reason)

    async def _hang_up(self, running: RunningCall, reason: str) -> None:
        """Store why voicedock ends the call, then ask the PBX to hang it up."""
        if running.remote_gone or running.hung_up:
            return
        running.hung_up = True
        records = self._engine.records
        with contextlib.suppress(Exception):  # queued before the hang-up it explains
            await self._backlog.submit(
                running.call_id,
                lambda: records.set_end_reason(running.call_id, reason),
                what=f"end reason of call {mask_call_id(running.call_id)}",
            )
        try:
            await self._pbx.hangup(running.call_id, "normal")
        except Exception as exc:  # noqa: BLE001 - reconciliation settles a call left behind
            log.warning("call %s: hang-up failed: %s", mask_call_id(running.call_id), describe(exc))


def _told_on(events: CallEvents) -> Callable[[Switch], None]:
    """A fallback plan's switches, told on the call's events."""
    from voicedock.pipeline.dialogue.events import ProviderSwitched

    return lambda switch: events.emit(ProviderSwitched(switch))


def _leg_keys(pbx: Pbx, call_id: str) -> LegKeys | None:
    """Where a phone menu's keys are pressed on the call (None: the PBX plays no DTMF)."""
    return LegKeys(pbx, call_id) if isinstance(pbx, DtmfPbx) else None
