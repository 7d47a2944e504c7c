"""Warm transfer on FreeSWITCH: call the agent first, bridge the caller only if they accept.

A bot cannot press ``att_xfer``'s keys, so (protocols.md §5.2):

1. ``bgapi originate {origination_uuid=<agent leg>,...}sofia/gateway/<trunk>/<agent> &park()``;
   the caller stays with the assistant meanwhile.
2. The agent answers and presses **1** to accept (any other digit declines) within the timeout.
3. Accepted: the caller's playback and audio stream stop (``uuid_break``, ``uuid_audio_stream
   stop``) and ``uuid_bridge <caller> <agent>`` joins them; ``TRANSFERRED`` is reported.
4. Declined, no answer, busy, agent hung up, or timed out: ``uuid_kill <agent leg>``, and
   ``TRANSFER_FAILED`` with the reason; the call goes on with the assistant.

If the caller hangs up first, ``cancel`` ends the attempt and the agent leg with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field

from voicedock.errors import PbxError
from voicedock.pbx.asterisk_calls import CallRegistry
from voicedock.pbx.base import PbxEvent, PbxEventKind, PbxEventSink, TransferTarget
from voicedock.pbx.freeswitch_escape import (
    build_audio_stream_stop,
    build_originate,
    build_uuid_break,
    build_uuid_bridge,
    build_uuid_kill,
    build_uuid_setvar,
    build_uuid_transfer,
    require_e164,
    require_token,
)
from voicedock.pbx.freeswitch_esl import EslClient, EslCommandError
from voicedock.pbx.freeswitch_wire import EslEvent

log = logging.getLogger("voicedock.pbx.freeswitch")

ACCEPT_DIGIT = "1"
# The dialplan's transfer extension bridges through the gateway named in this channel variable.
TRANSFER_GATEWAY_VARIABLE = "voicedock_transfer_gateway"


@dataclass(frozen=True, slots=True)
class WarmTransferRequest:
    call_id: str
    caller_channel: str
    destination: str  # E.164
    gateway: str
    caller_id: str  # E.164 shown to the agent (our number on the call)
    timeout_seconds: int = 30

    @classmethod
    def for_target(
        cls, call_id: str, channel: str, target: TransferTarget, caller_id: str, timeout: int
    ) -> WarmTransferRequest:
        """Validated: an E.164 agent through a trunk (internal targets have no agent leg)."""
        if target.internal or target.trunk_endpoint is None:
            raise PbxError("warm transfer needs an E.164 destination and a trunk")
        return cls(
            call_id=call_id,
            caller_channel=channel,
            destination=require_e164(target.destination, "destination"),
            gateway=require_token(target.trunk_endpoint, "trunk"),
            caller_id=caller_id,
            timeout_seconds=timeout,
        )


def blind_transfer_commands(channel: str, target: TransferTarget, context: str) -> list[str]:
    """``uuid_setvar`` of the gateway (if any), then ``uuid_transfer`` into ``context``."""
    internal = (target.destination,) if target.internal else ()
    transfer = build_uuid_transfer(
        channel, target.destination, context=context, internal_targets=internal
    )
    if target.trunk_endpoint is None:
        return [transfer]
    gateway = build_uuid_setvar(channel, TRANSFER_GATEWAY_VARIABLE, target.trunk_endpoint)
    return [gateway, transfer]


@dataclass(slots=True)
class _Attempt:
    request: WarmTransferRequest
    agent_channel: str
    events: asyncio.Queue[EslEvent] = field(default_factory=asyncio.Queue)


class BlindTransfers:
    """Blind transfers in flight. ``uuid_transfer`` only hands the caller to the dialplan; the
    transfer extension's ``bridge`` decides. ``CHANNEL_BRIDGE`` of the caller means the target
    answered (TRANSFERRED, as Asterisk's Dial ANSWER); the caller parked again means the bridge
    failed (``continue_on_fail``: TRANSFER_FAILED with ``originate_disposition``) and the call
    goes on with the assistant."""

    def __init__(self) -> None:
        self._pending: set[str] = set()

    def in_progress(self, call_id: str) -> bool:
        return call_id in self._pending

    def started(self, call_id: str) -> None:
        self._pending.add(call_id)

    def forget(self, call_id: str) -> None:
        self._pending.discard(call_id)

    def outcome(self, call_id: str, event: EslEvent) -> PbxEvent | None:
        """The transfer's outcome if ``event`` (of the caller's channel) decides it."""
        if call_id not in self._pending:
            return None
        if event.name == "CHANNEL_BRIDGE":
            self._pending.discard(call_id)
            return PbxEvent(call_id, PbxEventKind.TRANSFERRED)
        if event.name == "CHANNEL_PARK":
            self._pending.discard(call_id)
            result = event.get("variable_voicedock_transfer_result") or "failed"
            return PbxEvent(call_id, PbxEventKind.TRANSFER_FAILED, detail=f"transfer {result}"[:80])
        return None


class WarmTransfers:
    """Runs warm transfers; the adapter feeds it the agent legs' events (``on_event``)."""

    def __init__(self, esl: EslClient, calls: CallRegistry, emit: PbxEventSink) -> None:
        self._esl = esl
        self._calls = calls
        self._emit = emit
        self._by_agent: dict[str, _Attempt] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def in_progress(self, call_id: str) -> bool:
        return call_id in self._tasks

    def is_agent_leg(self, channel_uuid: str) -> bool:
        return channel_uuid in self._by_agent

    def start(self, request: WarmTransferRequest, tasks: asyncio.TaskGroup) -> None:
        """Validate (raises before any ESL traffic) and run the attempt in ``tasks``."""
        if request.call_id in self._tasks:
            raise PbxError("a transfer of this call is already in progress")
        attempt = _Attempt(request, str(uuid.uuid4()))
        command = self._originate_command(attempt)
        self._by_agent[attempt.agent_channel] = attempt
        task = tasks.create_task(self._run(attempt, command))
        self._tasks[request.call_id] = task

    def on_event(self, event: EslEvent) -> None:
        attempt = self._by_agent.get(event.unique_id or "")
        if attempt is not None:
            attempt.events.put_nowait(event)

    def cancel_all(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()

    def cancel(self, call_id: str) -> None:
        """The caller is gone: stop the attempt (its agent leg is hung up)."""
        task = self._tasks.get(call_id)
        if task is not None:
            task.cancel()

    @staticmethod
    def _originate_command(attempt: _Attempt) -> str:
        request = attempt.request
        return build_originate(
            call_uuid=attempt.agent_channel,
            destination=request.destination,
            caller_id_number=request.caller_id,
            gateway=request.gateway,
            timeout_seconds=request.timeout_seconds,
        )

    async def _run(self, attempt: _Attempt, command: str) -> None:
        call_id = attempt.request.call_id
        accepted, detail = False, "failed"
        try:
            async with asyncio.timeout(attempt.request.timeout_seconds + 5):
                accepted, detail = await self._attempt(attempt, command)
        except TimeoutError:
            detail = "agent-timeout"
        except PbxError as exc:
            detail = f"error {exc}"[:80]
        finally:
            del self._tasks[call_id]
            if not accepted:
                with contextlib.suppress(PbxError):
                    await self._kill(attempt.agent_channel)
            self._by_agent.pop(attempt.agent_channel, None)
        legs = self._calls.get(call_id)
        if accepted and legs is not None:
            legs.transferred = True  # the caller belongs to the agent now
            await self._emit(PbxEvent(call_id, PbxEventKind.TRANSFERRED, detail="warm"))
        elif not accepted:
            await self._emit(PbxEvent(call_id, PbxEventKind.TRANSFER_FAILED, detail=detail))

    async def _attempt(self, attempt: _Attempt, command: str) -> tuple[bool, str]:
        job = await self._esl.bgapi(command)
        try:
            await job.result()  # &park(): "+OK <uuid>" once the agent answered
        except EslCommandError as exc:
            return False, "agent " + exc.reply.removeprefix("-ERR").strip().lower()
        while True:
            event = await attempt.events.get()
            if event.name == "CHANNEL_HANGUP_COMPLETE":
                return False, "agent-hung-up"
            if event.name != "DTMF":
                continue
            if event.get("DTMF-Digit") != ACCEPT_DIGIT:
                return False, "agent-declined"
            return await self._bridge(attempt)

    async def _bridge(self, attempt: _Attempt) -> tuple[bool, str]:
        caller = attempt.request.caller_channel
        for stop in (build_uuid_break(caller, all_queued=True), build_audio_stream_stop(caller)):
            with contextlib.suppress(EslCommandError):
                await self._esl.api(stop)  # nothing was playing / streaming: fine
        try:
            await self._esl.api(build_uuid_bridge(caller, attempt.agent_channel))
        except EslCommandError as exc:
            return False, f"bridge {exc.reply}"[:80]
        return True, "accepted"

    async def _kill(self, channel: str) -> None:
        try:
            await self._esl.api(build_uuid_kill(channel, "NORMAL_CLEARING"))
        except EslCommandError as exc:
            if "No such channel" not in exc.reply:
                raise
