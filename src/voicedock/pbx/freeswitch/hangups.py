"""How a FreeSWITCH call ends: hung up by voicedock, or its channel gone.

``hang_up`` is ``uuid_kill`` of the call's channel, answered or still ringing. ``bgapi
originate`` returns before FreeSWITCH creates the channel, so a ringing leg killed too early
("No such channel") is killed on sight: at the first event of its uuid (``on_sight``).

``ended`` is the call over (``CHANNEL_HANGUP_COMPLETE`` with the Q.850 cause and the SIP
status, an originate's ``-ERR``, a caller gone before the answer): its HANGUP reported once,
then the call let go, with its blind transfer and its inbound claim (``inbound_claim``).
Reconcile ends the calls FreeSWITCH no longer has and those lost in a restart the same way
(``end_missing``, ``end_lost_in_restart``; a warm transfer in flight is cancelled with it).
"""

from __future__ import annotations

import logging

from voicedock.domain.ids import is_call_id, mask_call_id
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.freeswitch import inbound_claim
from voicedock.pbx.freeswitch.commands import build_uuid_kill
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import EslCommandError
from voicedock.pbx.freeswitch.transfer import BlindTransfers, WarmTransfers
from voicedock.pbx.legs import CallLegs, CallRegistry
from voicedock.pbx.reports import CallReports

__all__ = ["HANGUP_REASONS", "FreeswitchHangups"]

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")

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


class FreeswitchHangups:
    """The end of every call of one ``FreeswitchPbx``."""

    def __init__(
        self,
        esl: EslClient,
        calls: CallRegistry,
        reports: CallReports,
        blind: BlindTransfers,
        warm: WarmTransfers,
        spawn: Spawn,
        *,
        node_id: str,
    ) -> None:
        """``node_id``: this node when it claims each parked inbound call (empty: no claim)."""
        self._esl = esl
        self._calls = calls
        self._reports = reports
        self._blind = blind
        self._warm = warm
        self._spawn = spawn
        self._node_id = node_id
        # Ringing legs hung up before FreeSWITCH created them: channel uuid -> cause to kill with.
        self._kill_on_sight: dict[str, str] = {}

    async def hang_up(self, call_id: str, reason: str) -> None:
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
            await self._esl.api(build_uuid_kill(channel, cause))
        except EslCommandError as exc:
            if "No such channel" not in exc.reply:
                raise
            if legs.direction == "outbound" and not legs.seen_on_pbx:
                # bgapi originate returns before the channel exists: kill it when it shows up.
                self._kill_on_sight[channel] = cause

    def on_sight(self, uid: str, event_name: str) -> None:
        """An event of channel ``uid``: killed now if it was hung up before it existed."""
        cause = self._kill_on_sight.pop(uid, None)
        if cause is not None and event_name != "CHANNEL_HANGUP_COMPLETE":
            self._spawn(self._esl.api(build_uuid_kill(uid, cause)))  # hung up while ringing

    async def ended(
        self,
        call_id: str,
        *,
        cause: int | None,
        tech_cause: int | None,
        detail: str = "",
        reason: str = "",
    ) -> None:
        """The call is over: its HANGUP (the first time only; ``reason``: what failed, for the
        logs), then it is let go."""
        await self._reports.hangup(
            call_id, cause=cause, tech_cause=tech_cause, detail=detail, reason=reason
        )
        legs = self._calls.get(call_id)
        if legs is not None:
            self._kill_on_sight.pop(legs.main_channel, None)
            if self._node_id and legs.direction == "inbound":
                self._spawn(inbound_claim.release(self._esl, legs.main_channel))
        self._calls.forget(call_id)
        self._blind.forget(call_id)

    async def end_missing(self, legs: CallLegs) -> None:
        """Reconcile: FreeSWITCH no longer lists the call."""
        await self.ended(legs.call_id, cause=None, tech_cause=None, detail="reconciled")

    async def end_lost_in_restart(self, legs: CallLegs) -> None:
        """Reconcile: the call was lost in a restart."""
        self._warm.cancel(legs.call_id)
        await self.ended(legs.call_id, cause=None, tech_cause=None, detail="pbx-restart")
