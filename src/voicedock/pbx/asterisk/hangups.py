"""How an Asterisk call ends: hung up by voicedock, or its remote leg gone.

``hang_up`` deletes every leg and bridge voicedock holds for the call (ARI ``DELETE``). An
outbound call whose channel Asterisk has not created yet (an AMI Originate runs in a thread of
its own) is *unwanted*: its channel is hung up the moment it exists, by a chase that tries
every ``_CHASE_INTERVAL`` or by the channel's first event (``hang_up_if_unwanted``), whichever
comes first.

``ended`` is the remote leg gone (ARI ``ChannelDestroyed`` or AMI ``Hangup``, cause and SIP
code; an inbound caller gone before the answer: ``caller-left``): the call's HANGUP is
reported once, then its media legs and bridges are deleted (Asterisk never does) and the call
let go. Reconcile ends the calls the PBX no longer has and those lost in a restart the same
way (``end_missing``, ``end_lost_in_restart``).

A remote leg Asterisk said it hangs up (ARI ``ChannelHangupRequest``) whose ``ChannelDestroyed``
never came because the ARI connection dropped first ends its call then, as that hang-up
(``link_lost``): an Asterisk stopped with calls on it hangs them up and may be gone before it
reports them destroyed (Asterisk 22 stopped while a call's media leg is being created dies
in that request). A connection that drops with no such request ends nothing: the calls are
reconciled when it is back.
"""

from __future__ import annotations

import asyncio
import logging

from voicedock.domain.ids import mask_call_id
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.media.legs import AsteriskMedia, destroy_bridge
from voicedock.pbx.causes import CALLER_LEFT
from voicedock.pbx.legs import CallLegs, CallRegistry
from voicedock.pbx.reports import CallReports

__all__ = ["AsteriskHangups"]

log = logging.getLogger("voicedock.pbx.asterisk.pbx")

# A hang-up of a call whose channel does not exist yet (an AMI Originate Asterisk has queued
# but not dialled) retries this often, this long, and meets the channel's first event.
_CHASE_INTERVAL = 0.1
_CHASE_FOR = 10.0


class AsteriskHangups:
    """The end of every call of one ``AsteriskPbx``."""

    def __init__(
        self,
        ari: AriClient,
        calls: CallRegistry,
        reports: CallReports,
        media: AsteriskMedia,
        spawn: Spawn,
    ) -> None:
        self._ari = ari
        self._calls = calls
        self._reports = reports
        self._media = media
        self._spawn = spawn
        # Outbound calls hung up before their channel existed: hung up when it appears.
        self._unwanted: set[str] = set()
        # Remote legs Asterisk said it hangs up, not yet reported destroyed: the Q.850 cause
        # of the request when it gave one (a soft hang-up's cause is a flag, not a cause).
        self._hanging_up: dict[str, int | None] = {}

    # --- voicedock hangs up -----------------------------------------------------------------

    async def hang_up(self, call_id: str, reason: str) -> None:
        """Every channel and bridge voicedock holds for the call; a call it does not know: the
        channel of that id."""
        legs = self._calls.get(call_id)
        channels = legs.owned_channels() if legs is not None else [call_id]
        bridges = sorted(legs.bridges) if legs is not None else []
        async with asyncio.TaskGroup() as tg:
            deleted = [tg.create_task(self._ari.hangup_channel(c, reason)) for c in channels]
        for bridge in bridges:
            await destroy_bridge(self._ari, bridge)
        main_gone = bool(channels) and channels[0] == call_id and not deleted[0].result()
        if legs is not None and legs.direction == "outbound" and main_gone and _pending(legs):
            # Originated, but Asterisk has not created the channel yet (AMI Originate runs in
            # a thread of its own): a cancel must still reach it.
            self._unwanted.add(call_id)
            self._spawn(self._chase(call_id, reason))

    async def _chase(self, call_id: str, reason: str) -> None:
        """Hang up the unwanted call's channel once it exists (or until the call is over)."""
        try:
            async with asyncio.timeout(_CHASE_FOR):
                while call_id in self._unwanted:
                    legs = self._calls.get(call_id)
                    if legs is None or not _pending(legs):
                        return
                    if await self._ari.hangup_channel(legs.main_channel, reason):
                        log.info("call %s: hung up once its channel existed", mask_call_id(call_id))
                        return
                    await asyncio.sleep(_CHASE_INTERVAL)
        except TimeoutError:
            log.warning("call %s: its channel never appeared to be hung up", mask_call_id(call_id))
        finally:
            self._unwanted.discard(call_id)

    async def hang_up_if_unwanted(self, call_id: str) -> bool:
        """A channel event of the call: if it was hung up before its channel existed, hang it
        up now (True: the event means nothing more)."""
        if call_id not in self._unwanted:
            return False
        self._unwanted.discard(call_id)
        legs = self._calls.get(call_id)
        if legs is not None and not legs.ended:
            await self._ari.hangup_channel(legs.main_channel, "normal")
        return True

    # --- the call is over -------------------------------------------------------------------

    async def ended(
        self,
        channel_id: str,
        cause: int | None,
        tech_cause: int | None,
        *,
        detail: str = "",
        reason: str = "",
    ) -> None:
        """A channel of ours went: the remote leg ends its call, a media leg only goes
        (``detail``, ``reason``: the HANGUP's, ``CallReports.hangup``). An inbound caller
        gone before we answered left (``caller-left``), whatever the cause: Asterisk gives a
        cancelled INVITE (SIP 487) Q.850 127, interworking."""
        self._hanging_up.pop(channel_id, None)
        legs = self._calls.by_channel(channel_id)
        if legs is None:
            return
        if channel_id != legs.main_channel:
            self._calls.detach_channel(channel_id)  # a media leg went away
            return
        if not detail and legs.direction == "inbound" and not legs.answered:
            gone = f"the caller hung up before the answer (channel {channel_id})"
            detail, reason = CALLER_LEFT, reason or gone
        reported = await self._reports.hangup(
            legs.call_id, cause=cause, tech_cause=tech_cause, detail=detail, reason=reason
        )
        if reported:
            self._spawn(self._release(legs.call_id))

    def hang_up_requested(self, channel_id: str, cause: int | None) -> None:
        """Asterisk hangs the channel up (``ChannelHangupRequest``); ``ended`` follows."""
        legs = self._calls.by_channel(channel_id)
        if legs is None or channel_id != legs.main_channel or legs.ended or legs.transferred:
            return
        self._hanging_up[channel_id] = cause

    async def link_lost(self) -> None:
        """The ARI events connection dropped: a remote leg Asterisk was hanging up and never
        reported destroyed ends its call as that hang-up."""
        hanging_up, self._hanging_up = self._hanging_up, {}
        for channel_id, cause in hanging_up.items():
            legs = self._calls.by_channel(channel_id)
            if legs is None or legs.ended or legs.transferred:
                continue
            log.warning(
                "call %s: Asterisk was hanging it up when its ARI connection dropped",
                mask_call_id(legs.call_id),
            )
            gone = "hung up by Asterisk, whose ARI connection dropped before it was destroyed"
            await self.ended(channel_id, cause, None, reason=gone)

    async def end_missing(self, legs: CallLegs) -> None:
        """Reconcile: Asterisk no longer lists the call."""
        if await self._reports.hangup(legs.call_id, detail="reconciled"):
            self._spawn(self._release(legs.call_id))

    async def end_lost_in_restart(self, legs: CallLegs) -> None:
        """Reconcile: the call was lost in a restart (its legs and bridges are gone with it)."""
        await self._reports.hangup(legs.call_id, detail="pbx-restart")
        self._forget(legs.call_id)

    async def _release(self, call_id: str) -> None:
        await self._media.release(call_id)
        self._forget(call_id)

    def _forget(self, call_id: str) -> None:
        legs = self._calls.get(call_id)
        if legs is not None:
            self._hanging_up.pop(legs.main_channel, None)
        self._calls.forget(call_id)
        self._unwanted.discard(call_id)


def _pending(legs: CallLegs) -> bool:
    """Originated and not yet answered or over."""
    return not (legs.answered or legs.ended or legs.transferred)
