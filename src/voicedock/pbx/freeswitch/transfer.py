"""Warm transfer on FreeSWITCH: call the agent first, bridge the caller only if they accept.

A bot cannot press ``att_xfer``'s keys, so (protocols.md §5.2):

1. ``bgapi originate {origination_uuid=<agent leg>,...}sofia/gateway/<trunk>/<agent> &park()``,
   or for an internal target (``sales``, ``queue:<name>``, ``sip:<user>@<host>``)
   ``...}loopback/<target>/<transfer context>/XML &park()``: the target's extension dials the
   agent as in a blind transfer, and the ``-a`` loopback leg (our uuid) is the agent leg.
   The caller stays with the assistant meanwhile.
2. The agent answers and hears the briefing (the adapter's ``WarmDialogue`` from
   ``calls/transfers``: the caller's request, then "Press 1 to take the call, or 2 to
   decline"; played by ``freeswitch.agent_audio``, a beep when there is no voice for it).
   The decision window opens when the briefing ends: **1** accepts, any other digit declines
   (a digit during the briefing decides at once and cuts it short). With ``voice_decision``
   the prompt also says "say yes / say no", and the dialogue listens to the agent leg's
   stream: the first answer, digit or voice, wins.
3. Accepted: the caller's playback stops (``uuid_break``) and ``uuid_bridge <caller> <agent>``
   joins them. ``TRANSFERRED`` is reported only when FreeSWITCH confirms the bridge (the
   caller's ``CHANNEL_BRIDGE`` to the agent leg); then the caller's audio stream stops. If the
   agent hangs up before that, the bridge never forms, the caller is still streaming to the
   assistant, and ``TRANSFER_FAILED`` (``warm-agent-hung-up``) is reported.
4. Declined, no answer, busy, agent hung up, or timed out: ``uuid_kill <agent leg>``, and
   ``TRANSFER_FAILED`` with the reason; the call goes on with the assistant.

If the caller hangs up first, ``cancel`` ends the attempt and the agent leg with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field

from voicedock.aio import Supervisor, first_of
from voicedock.errors import PbxError
from voicedock.media.call_media import CallMedia
from voicedock.pbx.base import (
    BRIEFING_KEY,
    Decision,
    PbxEvent,
    PbxEventKind,
    PbxEventSink,
    Speech,
    TransferTarget,
    WarmDialogue,
)
from voicedock.pbx.freeswitch.agent_audio import agent_stream, speak_briefing, synthesize_quietly
from voicedock.pbx.freeswitch.commands import (
    build_audio_stream_stop,
    build_originate,
    build_originate_loopback,
    build_uuid_break,
    build_uuid_bridge,
    build_uuid_kill,
    build_uuid_setvar,
    build_uuid_transfer,
    require_e164,
    require_internal_target,
    require_token,
)
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import EslCommandError
from voicedock.pbx.freeswitch.esl.wire import EslEvent
from voicedock.pbx.freeswitch.media.hub import FreeswitchMediaHub
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.warm_answer import heard_decision

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")

ACCEPT_DIGIT = "1"
# After uuid_bridge's +OK, how long the bridge may take to form before the attempt fails.
BRIDGE_TIMEOUT_S = 10.0
# After the agent leg's hangup, how long the caller may take to park again.
_PARK_AFTER_FAILURE_S = 2.0
# The caller's variables while uuid_bridge forms: a bridge that fails parks it again, still
# streaming. uuid_bridge_on_soft_execute (switch_ivr_bridge.c) otherwise hangs the caller up
# when the agent leg is gone (park_after_bridge), cannot be waited for (..._park_on_cancel), or
# is hanging up at that moment (then it transfers the caller to the agent leg's ``rdnis``:
# ``park`` in the inline dialplan).
_PARK_ON_FAILURE = {
    "park_after_bridge": "true",
    "uuid_bridge_park_on_cancel": "true",
    "force_transfer_dialplan": "inline",
}
_AGENT_WHILE_BRIDGING = {"hangup_after_bridge": "true", "rdnis": "park"}
# Once it formed or failed: either leg hanging up ends the other; transfers as before.
_HANG_UP_AFTER_BRIDGE = {
    "park_after_bridge": "false",
    "uuid_bridge_park_on_cancel": "false",
    "force_transfer_dialplan": "XML",
    "hangup_after_bridge": "true",
}
# The dialplan's transfer extension bridges through the gateway named in this channel variable.
TRANSFER_GATEWAY_VARIABLE = "voicedock_transfer_gateway"


@dataclass(frozen=True, slots=True)
class WarmTransferRequest:
    call_id: str
    caller_channel: str
    destination: str  # E.164 through ``gateway``, or an internal target in ``context``
    gateway: str | None  # None: an internal target, reached through the dialplan (loopback)
    caller_id: str  # E.164 shown to the agent (our number on the call; may be "" if internal)
    timeout_seconds: int = 30  # for the agent to answer, and again to press 1 after the briefing
    briefing: str | None = None  # the call's, for the agent (None: the dialogue's default)
    context: str | None = None  # the transfer context of an internal target

    @classmethod
    def for_target(
        cls,
        call_id: str,
        channel: str,
        target: TransferTarget,
        caller_id: str,
        timeout: int,
        *,
        context: str = "voicedock_transfer",
    ) -> WarmTransferRequest:
        """Validated: an E.164 agent through a trunk, or an internal target (a name,
        ``queue:<name>``, ``sip:<user>@<host>``) that the extension of that name in
        ``context`` dials, as a blind transfer would."""
        briefing = target.extra.get(BRIEFING_KEY) or None
        if target.internal:
            return cls(
                call_id=call_id,
                caller_channel=channel,
                destination=require_internal_target(target.destination),
                gateway=None,
                caller_id=require_e164(caller_id, "caller_id") if caller_id else "",
                timeout_seconds=timeout,
                briefing=briefing,
                context=require_token(context, "context"),
            )
        if target.trunk_endpoint is None:
            raise PbxError("warm transfer to an E.164 number needs a trunk")
        return cls(
            call_id=call_id,
            caller_channel=channel,
            destination=require_e164(target.destination, "destination"),
            gateway=require_token(target.trunk_endpoint, "trunk"),
            caller_id=caller_id,
            timeout_seconds=timeout,
            briefing=briefing,
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
    bridging: bool = False  # uuid_bridge sent: the caller's bridge and park events count too


class BlindTransfers:
    """Blind transfers in flight. ``uuid_transfer`` only hands the caller to the dialplan; the
    transfer extension's ``bridge`` decides. ``CHANNEL_BRIDGE`` of the caller means the target
    answered (TRANSFERRED, as Asterisk's Dial ANSWER); the caller parked again means the bridge
    failed (``continue_on_fail``: TRANSFER_FAILED with ``originate_disposition``) and the call
    goes on with the assistant."""

    def __init__(self, context: str = "voicedock_transfer") -> None:
        self._pending: set[str] = set()
        self._context = context  # the transfer extensions' context: their park is the answer

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
            if event.get("Caller-Context") != self._context:
                # The originate's own &park() reports late, after CHANNEL_ANSWER (seen on the
                # lab FreeSWITCH): a transfer started at once must not take it for its failure.
                return None
            self._pending.discard(call_id)
            result = event.get("variable_voicedock_transfer_result") or ""
            detail = f"dialstatus={dialstatus_of(result)}"
            return PbxEvent(call_id, PbxEventKind.TRANSFER_FAILED, detail=detail)
        return None


# FreeSWITCH's originate_disposition -> Asterisk's DIALSTATUS words, the vocabulary of the
# documented transfer event (docs/transfers.md: ``dialstatus=BUSY``, ``dialstatus=NOANSWER``).
_DIALSTATUS = {
    "USER_BUSY": "BUSY",
    "NO_ANSWER": "NOANSWER",
    "NO_USER_RESPONSE": "NOANSWER",
    "ORIGINATOR_CANCEL": "CANCEL",
    "CALL_REJECTED": "CONGESTION",
    "NORMAL_TEMPORARY_FAILURE": "CONGESTION",
    "NORMAL_CIRCUIT_CONGESTION": "CONGESTION",
    "SWITCH_CONGESTION": "CONGESTION",
}


def dialstatus_of(disposition: str) -> str:
    """The DIALSTATUS word for a failed bridge's ``originate_disposition`` (CHANUNAVAIL for
    every other cause: no route, unallocated, incompatible, gateway down, ...)."""
    return _DIALSTATUS.get(disposition.strip().upper(), "CHANUNAVAIL")


class WarmTransfers:
    """Runs warm transfers; the adapter feeds it the agent legs' events (``on_event``)."""

    def __init__(
        self,
        esl: EslClient,
        calls: CallRegistry,
        emit: PbxEventSink,
        media: FreeswitchMediaHub,
        dialogue: WarmDialogue | None = None,
        *,
        voice_decision: bool = True,
    ) -> None:
        self._esl = esl
        self._calls = calls
        self._emit = emit
        self._media = media
        # What the agent hears and how their spoken answer is heard (``calls/transfers``);
        # None: a beep, and digits alone decide.
        self.dialogue = dialogue
        # A spoken "yes"/"no" decides too ([pbx.freeswitch.transfer] voice_decision).
        self.voice_decision = voice_decision
        self._by_agent: dict[str, _Attempt] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def in_progress(self, call_id: str) -> bool:
        return call_id in self._tasks

    def is_agent_leg(self, channel_uuid: str) -> bool:
        return channel_uuid in self._by_agent

    def start(self, request: WarmTransferRequest, tasks: Supervisor) -> None:
        """Validate (raises before any ESL traffic) and run the attempt in ``tasks``."""
        if request.call_id in self._tasks:
            raise PbxError("a transfer of this call is already in progress")
        attempt = _Attempt(request, str(uuid.uuid4()))
        command = self._originate_command(attempt)
        task = tasks.spawn(self._run(attempt, command))
        if task is None:
            raise PbxError("the adapter is closed")
        self._by_agent[attempt.agent_channel] = attempt
        self._tasks[request.call_id] = task

    def on_event(self, event: EslEvent) -> None:
        """An agent leg's event, or, once uuid_bridge is sent, the caller's ``CHANNEL_BRIDGE``
        (FreeSWITCH reports uuid_bridge on the first leg only) and ``CHANNEL_PARK``."""
        attempt = self._by_agent.get(event.unique_id or "")
        if attempt is None and event.name in ("CHANNEL_BRIDGE", "CHANNEL_PARK"):
            attempt = next(
                (a for a in self._by_agent.values() if a.request.caller_channel == event.unique_id),
                None,
            )
            if attempt is not None and not attempt.bridging:
                return
        if attempt is not None:
            attempt.events.put_nowait(event)

    def cancel(self, call_id: str) -> None:
        """The caller is gone: stop the attempt (its agent leg is hung up)."""
        task = self._tasks.get(call_id)
        if task is not None:
            task.cancel()

    @staticmethod
    def _originate_command(attempt: _Attempt) -> str:
        request = attempt.request
        if request.gateway is None:  # internal: the dialplan's extension dials the agent
            return build_originate_loopback(
                call_uuid=attempt.agent_channel,
                target=request.destination,
                context=request.context or "",
                caller_id_number=request.caller_id or None,
                timeout_seconds=request.timeout_seconds,
            )
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
            accepted, detail = await self._attempt(attempt, command)
        except TimeoutError:
            detail = "warm-no-decision"  # as on Asterisk: answered, never pressed
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
            # detail: the destination, as on Asterisk (the call record's ``transferred_to``)
            target = attempt.request.destination
            await self._emit(PbxEvent(call_id, PbxEventKind.TRANSFERRED, detail=target))
        elif not accepted:
            await self._emit(PbxEvent(call_id, PbxEventKind.TRANSFER_FAILED, detail=detail))

    async def _attempt(self, attempt: _Attempt, command: str) -> tuple[bool, str]:
        request = attempt.request
        # Synthesized while the agent's phone rings, so the briefing starts at answer.
        async with Supervisor("warm transfer", log) as tasks:
            speech = tasks.spawn_result(self._briefing_speech(request))
            assert speech is not None  # the supervisor runs for this block
            job = await self._esl.bgapi(command)
            try:
                async with asyncio.timeout(request.timeout_seconds + 5):
                    await job.result()  # &park(): "+OK <uuid>" once the agent answered
            except EslCommandError as exc:
                # As on Asterisk: busy, unreachable or silent, the agent did not answer.
                log.info("warm transfer: agent leg failed (%s)", exc.reply[:60])
                return False, "warm-no-answer"
            loop = asyncio.get_running_loop()
            briefed: asyncio.Future[None] = loop.create_future()
            said: asyncio.Future[Decision] = loop.create_future()
            tasks.spawn(self._agent_session(attempt, speech, briefed, said))
            decision = await self._decision(attempt, briefed, said)
        if decision is None:
            return False, "warm-agent-hung-up"
        if decision == "decline":
            return False, "warm-declined"
        return await self._bridge(attempt)

    async def _briefing_speech(self, request: WarmTransferRequest) -> Speech | None:
        """What the agent will hear, or ``None``: no voice for it (a beep then)."""
        dialogue = self.dialogue
        if dialogue is None:
            return None
        text = dialogue.briefing_text(request.briefing, voice_decision=self.voice_decision)
        return await synthesize_quietly(dialogue.synthesize, text)

    async def _agent_session(
        self,
        attempt: _Attempt,
        speech: asyncio.Future[Speech | None],
        briefed: asyncio.Future[None],
        said: asyncio.Future[Decision],
    ) -> None:
        """The agent leg's audio: the briefing out (then ``briefed``) and, with voice answers
        on, the agent's voice in until it means a decision (``said``). Lives until decided.

        With voice answers on, the agent is heard from their answer on, also while the
        briefing is still being synthesised: as on Asterisk, a "yes" said at once counts."""
        agent, call_id = attempt.agent_channel, attempt.request.call_id
        listener = self.dialogue if self.voice_decision else None
        if listener is None and await speech is None:
            await speak_briefing(None, self._esl, agent_channel=agent, speech=None)
            briefed.set_result(None)
            return
        async with (
            agent_stream(self._media, agent, call_id) as media,
            asyncio.TaskGroup() as tasks,
        ):
            if media is not None and listener is not None:
                tasks.create_task(self._listen(listener, media, call_id, said))
            try:
                voice = await speech
                await speak_briefing(media, self._esl, agent_channel=agent, speech=voice)
            finally:
                if not briefed.done():
                    briefed.set_result(None)

    async def _listen(
        self,
        dialogue: WarmDialogue,
        media: CallMedia,
        call_id: str,
        said: asyncio.Future[Decision],
    ) -> None:
        answer = await heard_decision(dialogue, media.inbound_audio(), media.format, call_id, log)
        if answer is not None and not said.done():
            said.set_result(answer)

    async def _decision(
        self, attempt: _Attempt, briefed: asyncio.Future[None], said: asyncio.Future[Decision]
    ) -> Decision | None:
        """The agent's answer (a digit or, first, their voice) during the briefing or within
        the window after it; ``None``: the agent hung up. The window (``timeout_seconds``)
        opens when the briefing ends."""
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            if said.done():
                return said.result()
            if deadline is None and briefed.done():
                deadline = loop.time() + attempt.request.timeout_seconds
            async with asyncio.timeout_at(deadline):
                pending = (said,) if briefed.done() else (said, briefed)
                event = await _next_event(attempt, *pending)
            if event is None:
                continue  # the briefing ended (the window is open) or the agent spoke
            if event.name == "CHANNEL_HANGUP_COMPLETE":
                return None
            digit = event.get("DTMF-Digit") if event.name == "DTMF" else None
            if digit:
                return "accept" if digit[:1] == ACCEPT_DIGIT else "decline"

    async def _bridge(self, attempt: _Attempt) -> tuple[bool, str]:
        """``uuid_bridge``, then wait for FreeSWITCH to report the bridge formed.

        ``+OK`` only means both legs were handed to the bridge: it forms a moment later, when
        the caller's application yields (about 60 ms on the lab FreeSWITCH), and it never forms
        if the agent hangs up meanwhile. Only the caller's ``CHANNEL_BRIDGE`` with the agent leg
        as its other leg is the transfer; until then the caller keeps the assistant's stream,
        so a bridge that fails leaves the call where it was (the caller goes back to its
        park, still streaming)."""
        caller = attempt.request.caller_channel
        with contextlib.suppress(EslCommandError):
            await self._esl.api(build_uuid_break(caller, all_queued=True))  # nothing playing
        try:
            # A uuid_bridge whose partner is gone before it forms hangs the caller up
            # (DESTINATION_OUT_OF_ORDER, switch_ivr_bridge.c) unless it is told to park.
            await self._set(caller, _PARK_ON_FAILURE)
            # After the bridge, a leg whose partner hangs up goes back to its own application
            # (the agent's &park()): without this it would stay up alone (seen on the lab).
            await self._set(attempt.agent_channel, _AGENT_WHILE_BRIDGING)
            attempt.bridging = True
            await self._esl.api(build_uuid_bridge(caller, attempt.agent_channel))
        except EslCommandError as exc:
            await self._set_quietly(caller, _HANG_UP_AFTER_BRIDGE)
            return False, f"bridge {exc.reply}"[:80]
        try:
            bridged = await self._bridge_outcome(attempt)
        except TimeoutError:
            bridged = False
        # Bridged: whoever hangs up first ends the other. Not: the caller is parked again
        # (only now: FreeSWITCH reads these variables until it parked it).
        await self._set_quietly(caller, _HANG_UP_AFTER_BRIDGE)
        if not bridged:
            return False, "warm-agent-hung-up"
        with contextlib.suppress(EslCommandError):  # the caller belongs to the agent now
            await self._esl.api(build_audio_stream_stop(caller))
        return True, "accepted"

    async def _bridge_outcome(self, attempt: _Attempt) -> bool:
        """True: the caller's ``CHANNEL_BRIDGE`` to the agent leg. False: the agent hung up
        and the caller parked again. ``TimeoutError`` after ``BRIDGE_TIMEOUT_S``."""
        agent_gone = False
        async with asyncio.timeout(BRIDGE_TIMEOUT_S):
            while True:
                event = await attempt.events.get()
                if event.unique_id == attempt.agent_channel:
                    agent_gone = agent_gone or event.name == "CHANNEL_HANGUP_COMPLETE"
                elif event.name == "CHANNEL_BRIDGE":
                    return True
                elif event.name == "CHANNEL_PARK" and (
                    event.get("Other-Leg-Unique-ID") == attempt.agent_channel
                ):
                    return False  # not the originate's own late park: the bridge's failure
                if agent_gone:  # the caller's park follows at once, unless it hung up
                    async with asyncio.timeout(_PARK_AFTER_FAILURE_S):
                        while (await attempt.events.get()).name != "CHANNEL_PARK":
                            pass
                    return False

    async def _set(self, channel: str, variables: Mapping[str, str]) -> None:
        for name, value in variables.items():
            await self._esl.api(build_uuid_setvar(channel, name, value))

    async def _set_quietly(self, channel: str, variables: Mapping[str, str]) -> None:
        with contextlib.suppress(EslCommandError):  # the channel is gone: nothing to set
            await self._set(channel, variables)

    async def _kill(self, channel: str) -> None:
        try:
            await self._esl.api(build_uuid_kill(channel, "NORMAL_CLEARING"))
        except EslCommandError as exc:
            if "No such channel" not in exc.reply:
                raise


async def _next_event(attempt: _Attempt, *others: Awaitable[object]) -> EslEvent | None:
    """The agent leg's next event, or ``None`` if one of ``others`` ends first (an event not
    taken stays in the queue for the next call: a cancelled ``get`` takes nothing)."""
    first = await first_of(attempt.events.get(), *others)
    if first is None or first[0] != 0 or not isinstance(first[1], EslEvent):
        return None
    return first[1]
