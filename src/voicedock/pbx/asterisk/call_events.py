"""What Asterisk's ARI and AMI events mean for voicedock's calls: ``AsteriskEvents``.

* RINGING   ARI ``Dial`` RINGING / ``ChannelStateChange`` Ringing, or AMI DialState/Newstate;
* ANSWERED  ``StasisStart`` of the outbound leg (args ``outbound,<call id>``);
* HANGUP    ARI ``ChannelDestroyed`` or AMI ``Hangup`` (cause + tech_cause = SIP code), never
            ``ChannelHangupRequest`` (its cause is a flag when ``soft``) while the ARI
            connection is up; one the connection dropped before its ``ChannelDestroyed``
            ends the call then (``AsteriskHangups.link_lost``). Reported once. A ringing
            channel destroyed with no cause rang out (Asterisk 16 says so).
* DTMF      ARI ``ChannelDtmfReceived`` on the remote leg (also the call's media's keys where
            its transport carries none: RTP, AudioSocket).

A caller's ``StasisStart`` (args ``inbound,<DID>``) goes to ``AsteriskInbound``; the events
of a transfer (its failed return, the agent's leg, the target answering) to
``AsteriskTransfers`` first. Which channels are in Stasis is told to the media as Asterisk says
it (``on_arrival``, ahead of the event queue): a media leg is bridged the moment both its
channels are.
"""

from __future__ import annotations

import logging

from voicedock.pbx.asterisk.ami.messages import AmiEvent, AmiHangup, AmiRinging
from voicedock.pbx.asterisk.ari.events import (
    ApplicationReplaced,
    AriEvent,
    ChannelDestroyed,
    ChannelStateChange,
    DialProgress,
    DtmfReceived,
    HangupRequest,
    StasisEnd,
    StasisStart,
)
from voicedock.pbx.asterisk.hangups import AsteriskHangups
from voicedock.pbx.asterisk.inbound import INBOUND_ARG, AsteriskInbound
from voicedock.pbx.asterisk.media.legs import AsteriskMedia
from voicedock.pbx.asterisk.transfers.native import AsteriskTransfers
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.reports import CallReports

__all__ = ["OUTBOUND_ARG", "AsteriskEvents"]

log = logging.getLogger("voicedock.pbx.asterisk.pbx")

OUTBOUND_ARG = "outbound"  # the Stasis args of an answered outbound leg: outbound,<call id>
NO_ANSWER_CAUSE = 19  # Q.850 "no answer from user"


class AsteriskEvents:
    """The ARI and AMI events of one ``AsteriskPbx``, as its calls' reports."""

    def __init__(
        self,
        calls: CallRegistry,
        reports: CallReports,
        hangups: AsteriskHangups,
        inbound: AsteriskInbound,
        transfers: AsteriskTransfers,
        media: AsteriskMedia,
        *,
        app: str,
    ) -> None:
        """``app``: the node's Stasis application (named when another client takes it)."""
        self._calls = calls
        self._reports = reports
        self._hangups = hangups
        self._inbound = inbound
        self._transfers = transfers
        self._media = media
        self._app = app

    def on_arrival(self, event: AriEvent) -> None:
        """As Asterisk says it, not once the queue reaches it: which channels are in Stasis
        (a media leg is bridged the moment both its channels are), when a caller arrived."""
        match event:
            case StasisStart():
                self._media.entered_stasis(event.channel.id)
                if len(event.args) >= 2 and event.args[0] == INBOUND_ARG:
                    self._inbound.heard(event.channel.id)
            case StasisEnd() | ChannelDestroyed():
                self._media.left_stasis(event.channel.id)
            case _:
                pass

    async def on_ari_event(self, event: AriEvent) -> None:
        match event:
            case StasisStart():
                if not await self._transfers.on_stasis_start(event):
                    await self._stasis_start(event)
            case DialProgress(dialstatus="ANSWER"):
                await self._transfers.on_dial(event)
            case DialProgress(peer=peer, dialstatus="RINGING"):
                await self._ringing(peer.id)
            case ChannelStateChange(channel=channel) if channel.state == "Ringing":
                await self._ringing(channel.id)
            case DtmfReceived(channel=channel, digit=digit):
                self._transfers.on_dtmf(channel.id, digit)
                legs = self._calls.by_channel(channel.id)
                if legs is not None and legs.main_channel == channel.id and not legs.ended:
                    self._media.caller_key(legs.call_id, digit)  # RTP, AudioSocket legs
                    await self._reports.dtmf(legs.call_id, digit)
            case HangupRequest(channel=channel, cause=cause, soft=soft):
                self._hangups.hang_up_requested(channel.id, None if soft else cause)
            case ChannelDestroyed():
                self._transfers.on_channel_destroyed(event.channel.id)
                await self._hangups.ended(event.channel.id, _cause(event), event.tech_cause)
            case ApplicationReplaced():
                log.error("another client took over ARI app %r", self._app)
            case _:
                pass

    async def on_ami_event(self, event: AmiEvent) -> None:
        match event:
            case AmiHangup(uniqueid=uid, cause=cause, tech_cause=tech):
                await self._hangups.ended(uid, cause, tech)
            case AmiRinging(uniqueid=uid):
                await self._ringing(uid)
            case _:
                pass

    async def _ringing(self, channel_id: str) -> None:
        legs = self._calls.by_channel(channel_id)
        if legs is None or legs.main_channel != channel_id:
            return
        if await self._hangups.hang_up_if_unwanted(legs.call_id):
            return
        await self._reports.ringing(legs.call_id)

    async def _stasis_start(self, event: StasisStart) -> None:
        args = event.args
        if len(args) >= 2 and args[0] == OUTBOUND_ARG:
            call_id = args[1]
            legs = self._calls.get(call_id) or self._calls.add(
                call_id, event.channel.id, "outbound"
            )
            if legs.main_channel != event.channel.id:
                return
            if await self._hangups.hang_up_if_unwanted(call_id):
                return  # answered, but it was hung up before
            await self._reports.answered(call_id)
        elif len(args) >= 2 and args[0] == INBOUND_ARG:
            self._inbound.arrived(event.channel, args[1], args[2] if len(args) > 2 else "")


def _cause(event: ChannelDestroyed) -> int | None:
    """The Q.850 cause the channel ended with. Asterisk 16 ends a channel whose originate rang
    out (ARI ``timeout``) with cause 0 and no ``Dial`` NOANSWER; 22 says 19: a channel that was
    still ringing and ended with no cause was not answered."""
    if event.cause == 0 and event.channel.state == "Ringing":
        return NO_ANSWER_CAUSE
    return event.cause
