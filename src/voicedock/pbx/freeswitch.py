"""``FreeswitchPbx``: the ``Pbx`` seam implemented over the FreeSWITCH Event Socket.

Outbound calls are ``bgapi originate {origination_uuid=<call id>,...}sofia/gateway/<trunk>/<dest>
&park()``: our call id *is* the channel uuid, so FreeSWITCH refuses a duplicate and every event
names the call directly. What happens to a call comes back as events:

* RINGING   ``CHANNEL_PROGRESS`` / ``CHANNEL_PROGRESS_MEDIA`` (once);
* ANSWERED  ``CHANNEL_ANSWER``;
* HANGUP    ``CHANNEL_HANGUP_COMPLETE``: cause = ``FREESWITCH_CAUSES[Hangup-Cause]``, tech_cause =
            ``variable_sip_term_status``; so ``error_for_unanswered`` gives the same
            ``CallError`` as on Asterisk. An ``originate`` that fails without any channel event
            (``-ERR INVALID_GATEWAY``) becomes a HANGUP with the cause of its ``-ERR`` name.

A side effect is never re-sent: when the socket breaks, the pending ``originate`` job fails
and its call stays in the registry; after the reconnect ``reconcile`` compares the calls we
believe live with ``show channels`` and reports the missing ones as HANGUP "reconciled".
Inbound: the dialplan parks a call to one of our DIDs (``dialplan/freeswitch``); its
``CHANNEL_PARK`` goes to the inbound handler, which returns a call id (then we answer) or None
(then we reject it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Coroutine
from typing import Any

from voicedock.config import FreeswitchSettings
from voicedock.errors import PbxError
from voicedock.pbx.asterisk_calls import CallRegistry
from voicedock.pbx.base import (
    InboundCall,
    InboundHandler,
    OriginateRequest,
    PbxEvent,
    PbxEventKind,
    PbxEventSink,
    TransferTarget,
)
from voicedock.pbx.causes import FREESWITCH_CAUSES
from voicedock.pbx.freeswitch_escape import (
    UnsafeCommandValue,
    build_originate,
    build_uuid_answer,
    build_uuid_kill,
    build_uuid_setvar,
    build_uuid_transfer,
    require_token,
    require_uuid,
)
from voicedock.pbx.freeswitch_esl import (
    DEFAULT_EVENTS,
    BackgroundJob,
    EslClient,
    EslCommandError,
    EslCommandTimeout,
    EslConnectionLost,
    EslNotConnected,
    EslSettings,
    EventSubscription,
)
from voicedock.pbx.freeswitch_wire import EslEvent
from voicedock.validation import is_token

log = logging.getLogger("voicedock.pbx.freeswitch")

PBX_EVENTS = (*DEFAULT_EVENTS[:-1], "CHANNEL_PARK", DEFAULT_EVENTS[-1])  # CUSTOM stays last
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
TRANSFER_GATEWAY_VARIABLE = "voicedock_transfer_gateway"
# A call never seen on the PBX and younger than this may not be on `show channels` yet.
_RECONCILE_GRACE = 2.0
# After `-ERR <CAUSE>` from originate, wait this long for the CHANNEL_HANGUP_COMPLETE that
# carries the SIP status before reporting the failure from the job result alone.
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


def _cause_of(name: str | None) -> int | None:
    return None if not name else FREESWITCH_CAUSES.get(name.strip())


def _sip_status(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() else None


class FreeswitchPbx:
    def __init__(
        self,
        settings: FreeswitchSettings,
        *,
        dids: Collection[str] = (),
        transfer_context: str = "voicedock_transfer",
        esl_settings: EslSettings | None = None,
    ) -> None:
        """``dids``: numbers whose parked inbound calls are ours; ``transfer_context``: the
        dialplan context of the transfer extension; ``esl_settings`` overrides the derived
        ones (timeouts, backoff) and must carry the events in ``PBX_EVENTS``."""
        self.esl = EslClient(
            esl_settings or esl_settings_for(settings), on_reconnect=self._on_reconnect
        )
        self.dids = set(dids)
        self._transfer_context = require_token(transfer_context, "transfer_context")
        self._calls = CallRegistry()
        self._sink: PbxEventSink | None = None
        self._inbound: InboundHandler | None = None
        self._inbound_pending: set[str] = set()
        self._reconcile_lock = asyncio.Lock()
        self._exit = contextlib.AsyncExitStack()
        self._tasks: asyncio.TaskGroup | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._closed = False

    # --- lifecycle --------------------------------------------------------------------------

    def set_inbound_handler(self, handler: InboundHandler) -> None:
        self._inbound = handler

    async def start(self, sink: PbxEventSink) -> None:
        if self._tasks is not None or self._closed:
            raise PbxError("FreeswitchPbx.start called twice or after aclose")
        self._sink = sink
        self._tasks = await self._exit.enter_async_context(asyncio.TaskGroup())
        # Subscribed before connecting: no event of the first connection can be missed.
        events = self.esl.subscribe()
        self._exit.push_async_callback(events.aclose)
        self._exit.push_async_callback(self.esl.aclose)
        await self.esl.start()
        self._spawn(self._consume(events))

    async def aclose(self) -> None:
        """Stop reporting and disconnect; live calls are left to FreeSWITCH. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._background):
            task.cancel()
        await self._exit.aclose()

    async def __aenter__(self) -> FreeswitchPbx:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self._tasks is None or self._closed:
            coro.close()
            return
        task = self._tasks.create_task(self._guard(coro))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(lambda _t: coro.close())  # cancelled before it ever ran

    async def _guard(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except PbxError as exc:
            log.warning("background FreeSWITCH task failed: %s", exc)
        except Exception:
            log.exception("background FreeSWITCH task crashed")

    async def _emit(self, event: PbxEvent) -> None:
        if self._sink is None:
            return
        try:
            await self._sink(event)
        except Exception:
            log.exception("PBX event sink failed for %s", event.kind)

    # --- outbound ---------------------------------------------------------------------------

    async def originate(self, request: OriginateRequest) -> None:
        # Built (and so validated) before any I/O: nothing unsafe may reach the Event Socket.
        command = build_originate(
            call_uuid=request.call_id,
            destination=request.destination,
            caller_id_number=request.caller_id,
            gateway=request.trunk_endpoint,
            timeout_seconds=request.timeout_seconds,
        )
        if self._calls.get(request.call_id) is not None:  # ended calls are forgotten at once
            raise PbxError("a call with this id is already in progress")
        self._calls.add(request.call_id, request.call_id, "outbound")
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
        if self._calls.mark_ended(call_id):
            await self._emit(
                PbxEvent(
                    call_id,
                    PbxEventKind.HANGUP,
                    cause=_cause_of(cause_name),
                    detail=f"originate-failed {cause_name}"[:80],
                )
            )
            self._calls.forget(call_id)

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        legs = self._calls.get(call_id)
        if legs is not None and (legs.ended or legs.transferred):
            return  # gone already, or the caller now belongs to the transfer target
        channel = legs.main_channel if legs is not None else call_id
        cause = HANGUP_REASONS.get(reason, "NORMAL_CLEARING")
        try:
            require_uuid(channel, "call id")
        except UnsafeCommandValue:
            return  # not a FreeSWITCH uuid, so not a channel of ours: nothing to hang up
        try:
            await self.esl.api(build_uuid_kill(channel, cause))
        except EslCommandError as exc:
            if "No such channel" not in exc.reply:
                raise

    async def transfer(self, call_id: str, target: TransferTarget) -> None:
        legs = self._calls.get(call_id)
        if legs is None or legs.ended:
            raise PbxError("no live call with this id")
        if target.mode != "blind":
            raise PbxError("only blind transfer is supported on FreeSWITCH")
        internal = (target.destination,) if target.internal else ()
        command = build_uuid_transfer(
            legs.main_channel,
            target.destination,
            context=self._transfer_context,
            internal_targets=internal,
        )
        setvar = None
        if target.trunk_endpoint is not None:
            setvar = build_uuid_setvar(
                legs.main_channel, TRANSFER_GATEWAY_VARIABLE, target.trunk_endpoint
            )
        try:
            if setvar is not None:
                await self.esl.api(setvar)
            await self.esl.api(command)
        except PbxError as exc:
            await self._emit(PbxEvent(call_id, PbxEventKind.TRANSFER_FAILED, detail=str(exc)))
            raise
        legs.transferred = True
        await self._emit(PbxEvent(call_id, PbxEventKind.TRANSFERRED))

    async def live_call_ids(self) -> set[str]:
        """Call ids of our calls FreeSWITCH still has, plus uuids of channels we do not know."""
        live: set[str] = set()
        for channel in await self.esl.show_channels():
            legs = self._calls.by_channel(channel.uuid)
            live.add(legs.call_id if legs is not None else channel.uuid)
        return live

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
        if event.name == "CHANNEL_PARK":
            if event.get("Call-Direction") == "inbound":
                self._park_inbound(event, uid)
            return
        legs = self._calls.by_channel(uid)
        if legs is None or legs.main_channel != uid:
            return
        legs.seen_on_pbx = True
        call_id = legs.call_id
        match event.name:
            case "CHANNEL_PROGRESS" | "CHANNEL_PROGRESS_MEDIA":
                if self._calls.mark_ringing(call_id):
                    await self._emit(PbxEvent(call_id, PbxEventKind.RINGING))
            case "CHANNEL_ANSWER":
                if self._calls.mark_answered(call_id):
                    await self._emit(PbxEvent(call_id, PbxEventKind.ANSWERED))
            case "DTMF":
                digit = event.get("DTMF-Digit")
                if digit and not legs.ended:
                    await self._emit(PbxEvent(call_id, PbxEventKind.DTMF, digit=digit[:1]))
            case "CHANNEL_HANGUP_COMPLETE":
                await self._ended(
                    call_id,
                    cause=_cause_of(event.get("Hangup-Cause")),
                    tech_cause=_sip_status(event.get("variable_sip_term_status")),
                )
            case _:
                pass

    async def _ended(
        self, call_id: str, *, cause: int | None, tech_cause: int | None, detail: str = ""
    ) -> None:
        if self._calls.mark_ended(call_id):
            event = PbxEvent(
                call_id, PbxEventKind.HANGUP, cause=cause, tech_cause=tech_cause, detail=detail
            )
            await self._emit(event)
        self._calls.forget(call_id)

    # --- inbound ----------------------------------------------------------------------------

    def _park_inbound(self, event: EslEvent, uid: str) -> None:
        if self._calls.by_channel(uid) is not None or uid in self._inbound_pending:
            return  # already ours (a park after a media restart, say)
        # The dialplan may normalise the carrier's number to E.164 in voicedock_did.
        called = event.get("variable_voicedock_did") or event.get("Caller-Destination-Number")
        if not called or called not in self.dids:
            return  # another application's call
        caller = event.get("Caller-Caller-ID-Number") or ""
        self._inbound_pending.add(uid)
        self._spawn(self._accept_inbound(InboundCall(uid, caller, called)))

    async def _accept_inbound(self, call: InboundCall) -> None:
        uid = call.pbx_call_ref
        try:
            call_id = await self._inbound(call) if self._inbound is not None else None
            if call_id is None or not is_token(call_id):
                await self.esl.api(build_uuid_kill(uid, "CALL_REJECTED"))
                return
            self._calls.add(call_id, uid, "inbound").seen_on_pbx = True
        finally:
            self._inbound_pending.discard(uid)
        try:
            await self.esl.api(build_uuid_answer(uid))
        except EslCommandError:
            # The caller left before we answered; its hangup event may already be gone.
            await self._ended(call_id, cause=None, tech_cause=None, detail="caller-left")
            return
        if self._calls.mark_answered(call_id):
            await self._emit(PbxEvent(call_id, PbxEventKind.ANSWERED))

    # --- reconcile --------------------------------------------------------------------------

    async def _on_reconnect(self, _client: EslClient) -> None:
        await self.reconcile()

    async def reconcile(self) -> None:
        """End every call we believe live that FreeSWITCH no longer has (after a reconnect)."""
        recheck = False
        async with self._reconcile_lock:
            try:
                present = {channel.uuid for channel in await self.esl.show_channels()}
            except EslNotConnected:
                return  # the next reconnect runs this again
            now = time.monotonic()
            for legs in self._calls.live():
                if legs.main_channel in present:
                    continue
                if not legs.seen_on_pbx and now - legs.created_at < _RECONCILE_GRACE:
                    recheck = True  # originate may still be creating the channel
                    continue
                await self._ended(legs.call_id, cause=None, tech_cause=None, detail="reconciled")
        if recheck:
            self._spawn(self._reconcile_later())

    async def _reconcile_later(self) -> None:
        await asyncio.sleep(_RECONCILE_GRACE)
        await self.reconcile()
