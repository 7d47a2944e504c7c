"""``FreeswitchPbx``: the ``Pbx`` (and ``MediaPbx``) seam over the FreeSWITCH Event Socket.

Every outbound leg gets its own ``uuid4()`` as ``origination_uuid`` (never the call id, which
is no UUID) and carries the call id as the channel variable ``voicedock_call_id``; the
``CallRegistry`` maps call id <-> channel uuid for every command and event (an inbound call
keeps FreeSWITCH's uuid). ``CHANNEL_PROGRESS*`` → RINGING, ``CHANNEL_ANSWER`` → ANSWERED,
``CHANNEL_HANGUP_COMPLETE`` → HANGUP with the Q.850 cause and ``sip_term_status``, so
``error_for_unanswered`` gives the same ``CallError`` as on Asterisk. A side effect is never
re-sent after a lost socket: ``reconcile`` settles the calls against ``show channels`` (or, if
FreeSWITCH restarted, fails them all); ``live_call_ids`` maps channels we do not know (after
our own restart) back to calls through ``voicedock_call_id``; ``adopt_call`` takes over an
answered call a killed run left, so that it is resumed (``calls/recovery``), and
``hang_up_leftovers`` clears the others. Inbound calls are parked by
``dialplan/freeswitch`` and offered to the inbound handler. Media: ``freeswitch.media``; warm
transfer: ``freeswitch.transfer``; the whole design: ``docs/freeswitch.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager

from voicedock.config import FreeswitchSettings
from voicedock.domain.ids import is_call_id, mask_call_id
from voicedock.errors import MediaError, PbxError
from voicedock.pbx.adapter import ADOPT_SETTLE_WAIT, PbxAdapter
from voicedock.pbx.base import (
    InboundCall,
    OriginateRequest,
    PbxEvent,
    PbxEventKind,
    PbxHealth,
    TransferTarget,
    WarmDialogue,
)
from voicedock.pbx.causes import freeswitch_cause
from voicedock.pbx.freeswitch import inbound_claim
from voicedock.pbx.freeswitch.boot_clock import BootClock
from voicedock.pbx.freeswitch.commands import (
    CALL_ID_VARIABLE,
    UnsafeCommandValue,
    build_originate,
    build_uuid_answer,
    build_uuid_exists,
    build_uuid_getvar,
    build_uuid_kill,
    build_uuid_send_dtmf,
    build_uuid_set_call_id,
    is_uuid,
    require_call_id,
    require_token,
)
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import (
    EslCommandError,
    EslCommandTimeout,
    EslConnectionLost,
    EslNotConnected,
)
from voicedock.pbx.freeswitch.esl.handles import BackgroundJob, EventSubscription
from voicedock.pbx.freeswitch.esl.settings import DEFAULT_EVENTS, EslSettings
from voicedock.pbx.freeswitch.esl.wire import ChannelInfo, EslEvent
from voicedock.pbx.freeswitch.media.call_media import FreeswitchCallMedia
from voicedock.pbx.freeswitch.media.hub import MEDIA_EVENT_SUBCLASSES, FreeswitchMediaHub
from voicedock.pbx.freeswitch.media.stream_server import AudioStreamServer
from voicedock.pbx.freeswitch.transfer import (
    BlindTransfers,
    WarmTransferRequest,
    WarmTransfers,
    blind_transfer_commands,
)
from voicedock.pbx.legs import CallLegs
from voicedock.validation import is_e164

__all__ = ["HANGUP_REASONS", "PBX_EVENTS", "FreeswitchPbx", "esl_settings_for"]

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")

# The events the adapter subscribes to; CUSTOM must come last: the event command takes
# subclass names after it.
PBX_EVENTS = (*DEFAULT_EVENTS[:-1], "CHANNEL_PARK", DEFAULT_EVENTS[-1], *MEDIA_EVENT_SUBCLASSES)

# The Q.850 name sent with uuid_kill for each Pbx.hangup reason (unknown reasons: normal).
HANGUP_REASONS = {
    "normal": "NORMAL_CLEARING",
    "busy": "USER_BUSY",
    "no-answer": "NO_ANSWER",
    "rejected": "CALL_REJECTED",
    "congestion": "NORMAL_TEMPORARY_FAILURE",
    "timeout": "RECOVERY_ON_TIMER_EXPIRE",
    "shutdown": "SYSTEM_SHUTDOWN",
}

# How long an originate waits for a reconnect to be reconciled before it gives up.
_SETTLE_TIMEOUT = 2.0
_NOT_READY = "FreeSWITCH is not connected or not reconciled yet"
# After originate's `-ERR <CAUSE>`, wait this long for the HANGUP_COMPLETE with the SIP status.
_ORIGINATE_FAILURE_GRACE = 0.5


def esl_settings_for(settings: FreeswitchSettings) -> EslSettings:
    """The ESL client settings; refuses the default password unless explicitly allowed."""
    return EslSettings(
        host=settings.esl_host,
        port=settings.esl_port,
        password=settings.esl_password,
        allow_default_password=settings.allow_default_password,
        events=PBX_EVENTS,
    )


class FreeswitchPbx(PbxAdapter):
    _not_connected = (EslNotConnected,)

    def __init__(
        self,
        settings: FreeswitchSettings,
        *,
        dids: Collection[str] = (),
        transfer_context: str | None = None,
        esl_settings: EslSettings | None = None,
        warm_dialogue: WarmDialogue | None = None,
        node_id: str = "",
    ) -> None:
        """``dids``: our numbers unless ``settings.dids``; ``esl_settings`` (timeouts, backoff)
        must carry the events in ``PBX_EVENTS``; ``warm_dialogue``: what a warm transfer says
        to the agent and how it hears their answer (``calls/transfers``; without it, a beep
        and digits alone); ``node_id``: this node, which claims each parked inbound call
        before answering it (``freeswitch.inbound_claim``; empty: no claim)."""
        super().__init__("FreeSWITCH", log)
        self._node_id = node_id
        self.esl = EslClient(
            esl_settings or esl_settings_for(settings), on_reconnect=self._on_reconnect
        )
        self.dids = set(settings.dids or dids)
        context = transfer_context or settings.transfer_context
        self._transfer_context = require_token(context, "transfer_context")
        self._warm_timeout = settings.transfer.timeout_seconds
        server = AudioStreamServer(
            settings.media_host, settings.media_port, settings.media_public_url
        )
        self.media = FreeswitchMediaHub(self.esl, server)
        self.warm = WarmTransfers(
            self.esl,
            self._calls,
            self._emit,
            self.media,
            warm_dialogue,
            voice_decision=settings.transfer.voice_decision,
        )
        self._blind = BlindTransfers(self._transfer_context)
        self._our_numbers: dict[str, str] = {}  # call id -> our E.164 on the call
        self._boot_clock = BootClock()  # tells a reconnect from a restarted FreeSWITCH
        self._inbound_pending: set[str] = set()
        # Ringing legs hung up before FreeSWITCH created them: channel uuid -> cause to kill with.
        self._kill_on_sight: dict[str, str] = {}

    # --- lifecycle --------------------------------------------------------------------------

    async def _connect(self) -> None:
        # Subscribed before connecting: no event of the first connection can be missed.
        events = self.esl.subscribe()
        self._exit.push_async_callback(events.aclose)
        self._exit.push_async_callback(self.esl.aclose)
        await self.esl.start()
        self._spawn(self._consume(events))
        await self.media.server.start()
        self._exit.push_async_callback(self.media.aclose)
        with contextlib.suppress(PbxError):
            await self._boot_clock.check(self.esl)  # records when it started
            self._settle(0)

    def health(self) -> PbxHealth:
        """The authenticated ESL connection (commands and events share it)."""
        return PbxHealth(
            "freeswitch",
            {"esl": self.esl.connected and not self._closed},
            reconnects={"esl": self.esl.reconnects},
        )

    # --- outbound ---------------------------------------------------------------------------

    async def originate(self, request: OriginateRequest) -> None:
        # Built (and so validated) before any I/O: nothing unsafe may reach the Event Socket.
        channel = str(uuid.uuid4())  # the leg's own uuid; the call id rides along as a variable
        command = build_originate(
            call_uuid=channel,
            call_id=request.call_id,
            destination=request.destination,
            caller_id_number=request.caller_id,
            gateway=request.trunk_endpoint,
            timeout_seconds=request.timeout_seconds,
        )
        if self._calls.get(request.call_id) is not None:  # ended calls are forgotten at once
            raise PbxError("a call with this id is already in progress")
        # Never on a connection not yet checked for a restart (it would be taken for lost).
        boot = await self._wait_settled(_SETTLE_TIMEOUT, _NOT_READY)
        if self._calls.get(request.call_id) is not None:
            raise PbxError("a call with this id is already in progress")
        self._calls.add(request.call_id, channel, "outbound").boot = boot
        self._our_numbers[request.call_id] = request.caller_id
        try:
            job = await self.esl.bgapi(command)
        except (EslConnectionLost, EslCommandTimeout):
            raise  # outcome unknown: the registry entry stays, reconcile settles it
        except PbxError:
            self._calls.forget(request.call_id)  # refused or never sent: no channel exists
            raise
        self._spawn(self._watch_originate(request.call_id, job))

    async def _watch_originate(self, call_id: str, job: BackgroundJob) -> None:
        try:
            await job.result()
        except EslCommandError as exc:
            cause_name = exc.reply.removeprefix("-ERR").strip()
        except PbxError:
            return  # the socket broke (or we closed): reconcile decides, nothing is re-sent
        else:
            return  # "+OK <uuid>": CHANNEL_ANSWER reports it
        await asyncio.sleep(_ORIGINATE_FAILURE_GRACE)
        cause, detail = freeswitch_cause(cause_name), f"originate-failed {cause_name}"[:80]
        await self._ended(call_id, cause=cause, tech_cause=None, detail=detail)

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        """``uuid_kill`` of the call's channel, answered or still ringing. A call we do not
        know has no channel we could name (``live_call_ids`` adopts live ones after a
        restart): nothing to do."""
        legs = self._calls.get(call_id)
        if legs is None:
            shown = mask_call_id(call_id) if is_call_id(call_id) else "(not a call id)"
            log.info("hangup of call %s: not a live call of this adapter", shown)
            return
        if legs.ended or legs.transferred:
            return  # gone already, or the caller now belongs to the transfer target
        channel, cause = legs.main_channel, HANGUP_REASONS.get(reason, "NORMAL_CLEARING")
        try:
            await self.esl.api(build_uuid_kill(channel, cause))
        except EslCommandError as exc:
            if "No such channel" not in exc.reply:
                raise
            if legs.direction == "outbound" and not legs.seen_on_pbx:
                # bgapi originate returns before the channel exists: kill it when it shows up.
                self._kill_on_sight[channel] = cause

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """``uuid_send_dtmf`` on the call's channel."""
        legs = self._calls.get(call_id)
        if legs is None or legs.ended or legs.transferred:
            raise PbxError("no live call with this id")
        await self.esl.api(build_uuid_send_dtmf(legs.main_channel, digits))

    async def transfer(self, call_id: str, target: TransferTarget) -> None:
        legs = self._calls.get(call_id)
        if legs is None or legs.ended:
            raise PbxError("no live call with this id")
        if self._blind.in_progress(call_id) or self.warm.in_progress(call_id):
            raise PbxError("a transfer of this call is already in progress")
        if target.mode == "warm" and self._tasks.running:
            number, timeout = self._our_numbers.get(call_id, ""), self._warm_timeout
            request = WarmTransferRequest.for_target(
                call_id, legs.main_channel, target, number, timeout, context=self._transfer_context
            )
            self.warm.start(request, self._tasks)
            return
        if target.mode != "blind":
            raise PbxError(f"transfer mode {target.mode!r} is not available")
        commands = blind_transfer_commands(legs.main_channel, target, self._transfer_context)
        self._blind.started(call_id)  # before the command: its bridge event may come first
        try:
            for command in commands:
                await self.esl.api(command)
        except PbxError as exc:
            self._blind.forget(call_id)
            await self._emit(PbxEvent(call_id, PbxEventKind.TRANSFER_FAILED, detail=str(exc)))
            raise

    @asynccontextmanager
    async def call_media(
        self, call_id: str, *, media_format: str = "ulaw"
    ) -> AsyncIterator[FreeswitchCallMedia]:
        """The call's audio (``MediaPbx``); on exit the stream stops and the call stays up."""
        legs = self._calls.get(call_id)
        if legs is None or legs.ended or not legs.answered:
            raise MediaError("no answered call with this id")
        async with self.media.open(legs.main_channel, call_id, media_format) as media:
            yield media

    async def live_call_ids(self) -> set[str]:
        """Call ids of our calls FreeSWITCH still has, plus uuids of channels we do not know.

        A channel we do not know but that carries ``voicedock_call_id`` (ours, from before a
        restart of voicedock) is adopted: reported by its call id, and ours to hang up again.
        """
        live: set[str] = set()
        for channel in await self.esl.show_channels():
            legs = self._calls.by_channel(channel.uuid)
            if legs is None and not self.warm.is_agent_leg(channel.uuid):
                legs = await self._adopt(channel.uuid, answered=channel.call_state == "ACTIVE")
            live.add(legs.call_id if legs is not None else channel.uuid)
        # ``show channels`` reads the core database, which lags a new channel by up to ~0.5 s
        # (seen on the lab FreeSWITCH): a call answered a moment ago must not look gone.
        for legs in self._calls.live():
            known = legs.call_id in live or legs.transferred
            if not known and await self._exists(legs.main_channel):
                live.add(legs.call_id)
        return live

    async def _exists(self, channel_uuid: str) -> bool:
        try:
            return (await self.esl.api(build_uuid_exists(channel_uuid))).strip() == "true"
        except EslCommandError:
            return False

    async def hang_up_leftovers(self, calls: Mapping[str, str | None]) -> set[str]:
        """``LeftoverPbx``: ``uuid_kill`` every channel this run does not know that carries
        one of these call ids as ``voicedock_call_id`` (or is a stored inbound uuid), then
        check ``show channels``; returns the call ids of which a channel is still there."""
        mine = {channel.uuid: call_id for channel, call_id in await self._leftovers(calls)}
        for leg in mine:
            with contextlib.suppress(EslCommandError):  # "No such channel": gone already
                await self.esl.api(build_uuid_kill(leg, "NORMAL_CLEARING"))
        present = {channel.uuid for channel in await self.esl.show_channels()}
        return {call_id for leg, call_id in mine.items() if leg in present}

    async def _leftovers(self, calls: Mapping[str, str | None]) -> list[tuple[ChannelInfo, str]]:
        """The channels this run does not know of these calls (call id -> the stored uuid of
        the remote leg, if any), found by uuid or by ``voicedock_call_id``, with their call."""
        refs = {ref: call_id for call_id, ref in calls.items() if ref}
        found: list[tuple[ChannelInfo, str]] = []
        for channel in await self.esl.show_channels():
            if self._calls.by_channel(channel.uuid) is not None:
                continue  # a call of this run
            call_id = refs.get(channel.uuid)
            if call_id is None:
                try:
                    command = build_uuid_getvar(channel.uuid, CALL_ID_VARIABLE)
                    call_id = (await self.esl.api(command)).strip()
                except (EslCommandError, UnsafeCommandValue):
                    continue  # gone meanwhile, or no uuid of ours
            if call_id in calls and self._calls.get(call_id) is None:
                found.append((channel, call_id))
        return found

    async def adopt_call(self, call_id: str, remote_ref: str | None) -> bool:
        """``ResumablePbx``: take over an answered call a previous run left (``kill -9``).

        The remote leg (the stored uuid of an inbound call, else the channel carrying the call
        id as ``voicedock_call_id`` over a SIP gateway) must be up and answered; any other leg
        of the call (a warm-transfer agent) is killed, and the previous run's audio stream and
        playback on the remote leg are stopped, so ``call_media`` starts a fresh stream. On any
        failure nothing stays registered, so ``hang_up_leftovers`` can clear the call."""
        if self._calls.get(call_id) is not None or not is_call_id(call_id):
            return False
        if remote_ref is not None and not is_uuid(remote_ref):
            return False
        # Right after start-up the connection may still be coming up: the caller bounds the wait.
        boot = await self._wait_settled(ADOPT_SETTLE_WAIT, _NOT_READY)
        found = await self._leftovers({call_id: remote_ref})
        remote = _remote_leg([channel for channel, _ in found], remote_ref)
        if remote is None or remote.call_state != "ACTIVE":
            return False
        for channel, _ in found:
            if channel.uuid != remote.uuid:
                with contextlib.suppress(EslCommandError):  # gone already
                    await self.esl.api(build_uuid_kill(channel.uuid, "NORMAL_CLEARING"))
        await self.media.clear_leftovers(remote.uuid)
        direction = "inbound" if remote_ref is not None else "outbound"
        legs = self._calls.add(call_id, remote.uuid, direction)
        legs.boot, legs.seen_on_pbx = boot, True
        self._calls.mark_answered(call_id)  # the engine has it in progress: not reported
        # Our number on the call (a warm transfer's caller id): as ``show channels`` lists it.
        number = remote.raw.get("callee_num" if direction == "outbound" else "dest", "")
        if is_e164(number):
            self._our_numbers[call_id] = number
        try:
            # Gone while we looked: its CHANNEL_HANGUP_COMPLETE went to nobody.
            present = await self._exists(remote.uuid)
        except BaseException:
            self._forget(call_id)
            raise
        if not present:
            self._forget(call_id)
            return False
        log.info("call %s: adopted from a previous run", mask_call_id(call_id))
        return True

    def _forget(self, call_id: str) -> None:
        self._calls.forget(call_id)
        self._our_numbers.pop(call_id, None)

    async def _adopt(self, channel: str, *, answered: bool) -> CallLegs | None:
        try:
            call_id = (await self.esl.api(build_uuid_getvar(channel, CALL_ID_VARIABLE))).strip()
        except (EslCommandError, UnsafeCommandValue):
            return None  # gone meanwhile, or not a uuid FreeSWITCH would give
        if not is_call_id(call_id) or self._calls.get(call_id) is not None:
            return None  # another application's channel (``_undef_``), or a second leg
        direction = "inbound" if call_id.startswith("call-_") else "outbound"
        legs = self._calls.add(call_id, channel, direction)
        legs.seen_on_pbx = True
        legs.answered = answered
        log.info("call %s: channel adopted after a restart", mask_call_id(call_id))
        return legs

    # --- events -----------------------------------------------------------------------------

    async def _consume(self, events: EventSubscription) -> None:
        async for event in events:
            try:
                await self._on_event(event)
            except PbxError as exc:
                log.warning("FreeSWITCH event %s not handled: %s", event.name, exc)

    async def _on_event(self, event: EslEvent) -> None:
        uid = event.unique_id
        if not uid:
            return
        cause = self._kill_on_sight.pop(uid, None)
        if cause is not None and event.name != "CHANNEL_HANGUP_COMPLETE":
            self._spawn(self.esl.api(build_uuid_kill(uid, cause)))  # hung up while ringing
        self.media.on_event(event)  # play events and digits for attached media
        self.warm.on_event(event)  # an agent leg's event, or the caller's bridge to it
        if self.warm.is_agent_leg(uid):
            return
        legs = self._calls.by_channel(uid)
        if legs is None and event.name == "CHANNEL_PARK":
            if event.get("Call-Direction") == "inbound":
                self._park_inbound(event, uid)
            return
        if legs is None or legs.main_channel != uid:
            return
        legs.seen_on_pbx = True
        call_id = legs.call_id
        outcome = self._blind.outcome(call_id, event)
        if outcome is not None:
            if outcome.kind is PbxEventKind.TRANSFERRED:
                legs.transferred = True  # the caller belongs to the target now
                self._spawn(self.media.stop_stream(uid))
            await self._emit(outcome)
            return
        match event.name:
            case "CHANNEL_PROGRESS" | "CHANNEL_PROGRESS_MEDIA":
                await self._report_ringing(call_id)
            case "CHANNEL_ANSWER":
                await self._report_answered(call_id)
            case "DTMF":
                digit = event.get("DTMF-Digit")
                if digit and not legs.ended:
                    await self._report_dtmf(call_id, digit[:1])
            case "CHANNEL_HANGUP_COMPLETE":
                await self._ended(
                    call_id,
                    cause=freeswitch_cause(event.get("Hangup-Cause")),
                    tech_cause=_sip_status(event.get("variable_sip_term_status")),
                )
                self.warm.cancel(call_id)
            case _:
                pass

    async def _ended(
        self, call_id: str, *, cause: int | None, tech_cause: int | None, detail: str = ""
    ) -> None:
        await self._report_hangup(call_id, cause=cause, tech_cause=tech_cause, detail=detail)
        legs = self._calls.get(call_id)
        if legs is not None:
            self._kill_on_sight.pop(legs.main_channel, None)
            if self._node_id and legs.direction == "inbound":
                self._spawn(inbound_claim.release(self.esl, legs.main_channel))
        self._calls.forget(call_id)
        self._our_numbers.pop(call_id, None)
        self._blind.forget(call_id)

    # --- inbound ----------------------------------------------------------------------------

    def _park_inbound(self, event: EslEvent, uid: str) -> None:
        if self._calls.by_channel(uid) is not None or uid in self._inbound_pending:
            return  # already ours (a park after a media restart, say)
        call = parked_inbound_call(event, uid, self.dids)
        if call is not None:  # else another application's call
            self._inbound_pending.add(uid)
            self._spawn(self._accept_inbound(call))

    async def _accept_inbound(self, call: InboundCall) -> None:
        uid = call.pbx_call_ref
        try:
            if self._node_id and not await inbound_claim.claim(self.esl, uid, self._node_id):
                return  # another node answers it
            call_id = await self._offer_inbound(call)
            if call_id is None:
                await self.esl.api(build_uuid_kill(uid, "CALL_REJECTED"))
                if self._node_id:
                    await inbound_claim.release(self.esl, uid)
                return
            self._calls.add(call_id, uid, "inbound").seen_on_pbx = True
            self._our_numbers[call_id] = call.called
        finally:
            self._inbound_pending.discard(uid)
        try:
            # The channel keeps FreeSWITCH's uuid; the variable maps it back after a restart.
            await self.esl.api(build_uuid_set_call_id(uid, require_call_id(call_id)))
            await self.esl.api(build_uuid_answer(uid))
        except EslCommandError:
            # The caller left before we answered; its hangup event may already be gone.
            await self._ended(call_id, cause=None, tech_cause=None, detail="caller-left")
            return
        await self._report_answered(call_id)

    # --- reconcile --------------------------------------------------------------------------

    async def _on_reconnect(self, _client: EslClient) -> None:
        await self.reconcile()

    def _links(self) -> int:
        return self.esl.reconnects

    def _links_up(self) -> bool:
        return self.esl.connected

    async def _check_restart(self) -> bool:
        return await self._boot_clock.check(self.esl)

    async def _listed_channels(self) -> set[str]:
        return {channel.uuid for channel in await self.esl.show_channels()}

    def _may_be_unlisted(self, legs: CallLegs, now: float) -> bool:
        # Until FreeSWITCH reported the channel, originate may still be creating it.
        return not legs.seen_on_pbx and super()._may_be_unlisted(legs, now)

    async def _hang_up_restart_leftovers(self, old: list[CallLegs]) -> bool:
        """The remote leg of each call the restarted FreeSWITCH still has is killed."""
        present = await self._listed_channels()
        for legs in old:
            if legs.main_channel in present and not legs.transferred:
                with contextlib.suppress(EslCommandError):  # "No such channel": gone already
                    await self.esl.api(build_uuid_kill(legs.main_channel, "NORMAL_CLEARING"))
        left = await self._listed_channels()
        return not any(legs.main_channel in left and not legs.transferred for legs in old)

    async def _end_missing(self, legs: CallLegs) -> None:
        await self._ended(legs.call_id, cause=None, tech_cause=None, detail="reconciled")

    async def _end_lost_in_restart(self, legs: CallLegs) -> None:
        self.warm.cancel(legs.call_id)
        await self._ended(legs.call_id, cause=None, tech_cause=None, detail="pbx-restart")


def parked_inbound_call(event: EslEvent, uid: str, dids: set[str]) -> InboundCall | None:
    """The ``CHANNEL_PARK`` of a call to one of our numbers, as an ``InboundCall``."""
    # The dialplan normalises the carrier's number to E.164 in voicedock_did.
    called = event.get("variable_voicedock_did") or event.get("Caller-Destination-Number")
    if not called or called not in dids:
        return None
    return InboundCall(uid, event.get("Caller-Caller-ID-Number") or "", called)


def _sip_status(value: str | None) -> int | None:
    """``variable_sip_term_status``: the SIP status the call ended with."""
    return int(value) if value and value.isascii() and value.isdigit() else None


def _remote_leg(channels: list[ChannelInfo], remote_ref: str | None) -> ChannelInfo | None:
    """The call's remote leg among its channels: the stored uuid (inbound), else the oldest
    SIP leg (our originate's; a warm transfer's agent legs are loopback ones and later)."""
    if remote_ref is not None:
        return next((channel for channel in channels if channel.uuid == remote_ref), None)
    sip = [channel for channel in channels if channel.raw.get("name", "").startswith("sofia/")]
    return min(sip, key=_created, default=None)


def _created(channel: ChannelInfo) -> int:
    epoch = channel.raw.get("created_epoch", "")
    return int(epoch) if epoch.isdigit() else 0
