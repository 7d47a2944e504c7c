"""Native transfers on Asterisk: blind (ARI ``continue``) and warm (agent briefed over ARI).

Blind: the caller's channel continues into the transfers context, where Asterisk dials the
target (findings §3: ``/continue`` reached the target in 6 ms). voicedock keeps its media leg
and bridge until the outcome is known, from the events of the caller's channel (still ours
to watch after StasisEnd):

* ``Dial`` with dialstatus ANSWER and the caller as dialling channel → TRANSFERRED; the media
  leg and the bridge are removed, the caller now talks to the target without voicedock;
* ``StasisStart`` with args ``transfer-failed,<DIALSTATUS>`` (the dialplan's
  ``voicedock-transfer-result``) → TRANSFER_FAILED, and the caller is put back into the call's
  bridge, where the media leg waited: the assistant simply goes on (and says so).

Warm (``WarmTransfer``): the call stays under ARI control throughout. The caller leaves the
bridge and hears hold audio; the agent leg is originated as ``Local/<target>@<transfers>/n``
into our app (args ``warm,<call id>``, so the dialplan's target mapping is reused), gets its
own bridge and media leg, hears the briefing and answers it with DTMF 1 (accept) or 2
(decline), or by saying so ("yes" / "no": the adapter's ``WarmDialogue``, from
``calls/transfers``, gives the briefing's voice and hears the answer). Accept → the caller joins
the agent's bridge and voicedock's legs go; anything else (decline, hang-up, no answer,
timeout) → the agent's legs go and the caller is back with the assistant.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import quote

from voicedock.aio import Coro
from voicedock.domain.ids import mask_call_id
from voicedock.errors import PbxError
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.ari.events import DialProgress, StasisStart
from voicedock.pbx.asterisk.media.legs import (
    add_channel,
    leg_id,
)
from voicedock.pbx.asterisk.media.transports import MediaTransports
from voicedock.pbx.asterisk.node_apps import APP_VARIABLE
from voicedock.pbx.asterisk.transfers.context import TransferSettings, dialplan_target
from voicedock.pbx.asterisk.transfers.warm import WARM_ARG, WarmTransfer
from voicedock.pbx.base import PbxEvent, PbxEventKind, PbxEventSink, TransferTarget, WarmDialogue
from voicedock.pbx.legs import CallLegs, CallRegistry
from voicedock.validation import is_token

log = logging.getLogger("voicedock.pbx.asterisk.pbx")

TRANSFER_FAILED_ARG = "transfer-failed"


async def set_variable(ari: AriClient, channel_id: str, name: str, value: str) -> None:
    params = {"variable": name, "value": value}
    await ari.request("POST", f"/channels/{quote(channel_id, safe='')}/variable", params=params)


class AsteriskTransfers:
    """Every transfer in flight on one ``AsteriskPbx``; fed the ARI events it needs."""

    def __init__(
        self,
        ari: AriClient,
        calls: CallRegistry,
        settings: TransferSettings,
        *,
        emit: PbxEventSink,
        spawn: Spawn,
        release_media: Callable[[str], Coro[None]],
        transports: MediaTransports,
        dialogue: WarmDialogue | None = None,
    ) -> None:
        """``transports``: how the server's media legs travel (the agent's briefing leg too)."""
        self.ari = ari
        self.transports = transports
        self.calls = calls
        self.settings = settings
        self.emit = emit
        self.spawn = spawn
        self.release_media = release_media
        # What a warm transfer says to the agent and how it hears them (``calls/transfers``);
        # None: a beep, and digits alone decide.
        self.dialogue = dialogue
        self._blind: dict[str, str] = {}  # call id -> destination, until the outcome
        self._warm: dict[str, WarmTransfer] = {}  # call id -> the attempt in flight
        self._stasis: dict[str, asyncio.Event] = {}  # channels a warm attempt waits for

    # -- requests --------------------------------------------------------------------------

    async def start(self, legs: CallLegs, target: TransferTarget) -> None:
        """Start a transfer; its outcome comes as TRANSFERRED / TRANSFER_FAILED."""
        where = dialplan_target(target)
        if legs.call_id in self._blind or legs.call_id in self._warm:
            raise PbxError("a transfer of this call is already in progress")
        if target.mode == "warm":
            attempt = WarmTransfer(self, legs, target, where)
            self._warm[legs.call_id] = attempt
            self.spawn(attempt.run())
            return
        # A failed transfer brings the caller back to this node's application (the dialplan's
        # voicedock-transfer-result reads VOICEDOCK_APP).
        variables = {**where.variables, APP_VARIABLE: self.settings.app}
        for name, value in variables.items():
            await set_variable(self.ari, legs.main_channel, name, value)
        self._blind[legs.call_id] = target.destination
        try:
            await self.ari.continue_in_dialplan(
                legs.main_channel, self.settings.context, where.extension
            )
        except PbxError:
            self._blind.pop(legs.call_id, None)
            raise

    # -- events (handed over by AsteriskEvents) ---------------------------------------------

    async def on_dial(self, event: DialProgress) -> None:
        if event.caller is None or event.dialstatus != "ANSWER":
            return
        legs = self.calls.by_channel(event.caller.id)
        if legs is None or legs.main_channel != event.caller.id:
            return
        destination = self._blind.pop(legs.call_id, None)
        if destination is None:
            return
        legs.transferred = True  # the caller is no longer ours to hang up
        await self.emit(PbxEvent(legs.call_id, PbxEventKind.TRANSFERRED, detail=destination))
        self.spawn(self.release_media(legs.call_id))

    async def on_stasis_start(self, event: StasisStart) -> bool:
        """``True`` when the event belonged to a transfer (and was handled here)."""
        channel_id = event.channel.id
        if channel_id in self._stasis:
            self._stasis[channel_id].set()
        args = event.args
        if args and args[0] == TRANSFER_FAILED_ARG:
            await self._blind_failed(channel_id, args[1] if len(args) > 1 else "")
            return True
        return bool(args) and args[0] == WARM_ARG

    def on_dtmf(self, channel_id: str, digit: str) -> None:
        for attempt in list(self._warm.values()):
            attempt.digit_pressed(channel_id, digit)

    def on_channel_destroyed(self, channel_id: str) -> None:
        legs = self.calls.by_channel(channel_id)
        if legs is not None and legs.main_channel == channel_id:
            self._blind.pop(legs.call_id, None)  # the caller hung up while it rang
        for attempt in list(self._warm.values()):
            attempt.channel_gone(channel_id)

    async def _blind_failed(self, channel_id: str, dialstatus: str) -> None:
        legs = self.calls.by_channel(channel_id)
        if legs is None or legs.main_channel != channel_id or legs.ended:
            await self.ari.hangup_channel(channel_id)  # not a call of ours (any more)
            return
        self._blind.pop(legs.call_id, None)
        status = dialstatus if is_token(dialstatus) else "UNKNOWN"
        log.info("call %s: blind transfer failed (%s)", mask_call_id(legs.call_id), status)
        bridge = leg_id(legs.call_id, "bridge")
        if bridge in legs.bridges:
            await add_channel(self.ari, bridge, channel_id)  # back with the assistant
        await self.emit(
            PbxEvent(legs.call_id, PbxEventKind.TRANSFER_FAILED, detail=f"dialstatus={status}")
        )

    # -- helpers for WarmTransfer ----------------------------------------------------------

    def watch_stasis(self, channel_id: str) -> asyncio.Event:
        return self._stasis.setdefault(channel_id, asyncio.Event())

    def unwatch(self, *channel_ids: str) -> None:
        for channel_id in channel_ids:
            self._stasis.pop(channel_id, None)

    def finished(self, call_id: str) -> None:
        self._warm.pop(call_id, None)
