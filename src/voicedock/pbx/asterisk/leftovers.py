"""What a previous run of voicedock left on Asterisk (after a crash or ``kill -9``): cleared
(``LeftoverPbx``), or an answered call taken over so that it goes on (``ResumablePbx``).

The adapter's registry of a new run is empty, so the legs are named as the previous run named
them: the remote leg (the call id for an outbound call, the stored channel id of an inbound
one) and the media and warm-transfer legs and bridges, named after the call id
(``media/legs.leg_id``). Every delete is checked against ARI's channel and bridge lists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from urllib.parse import quote

from voicedock.domain.ids import mask_call_id
from voicedock.errors import PbxError
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.ari.events import AriChannel, channel_from_json
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.media.legs import AsteriskMedia, destroy_bridge, leg_id
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.reconcile import ADOPT_SETTLE_WAIT, Reconciler
from voicedock.validation import is_token

__all__ = ["AsteriskLeftovers"]

log = logging.getLogger("voicedock.pbx.asterisk.pbx")

# What a call may hold besides the remote leg (``asterisk.media``, ``asterisk.transfers.warm`` ids).
_LEFTOVER_LEGS = ("media", "agent", "agentmedia")
_LEFTOVER_BRIDGES = ("bridge", "warm")


class AsteriskLeftovers:
    """A previous run's calls on one ``AsteriskPbx``'s Asterisk."""

    def __init__(
        self,
        ari: AriClient,
        calls: CallRegistry,
        reconciler: Reconciler,
        media: AsteriskMedia,
        *,
        app: str,
        register_timeout: float,
    ) -> None:
        """``app``: the Stasis application an adopted call must still wait in;
        ``register_timeout``: how long adopting waits for a settled connection at least."""
        self._ari = ari
        self._calls = calls
        self._reconciler = reconciler
        self._media = media
        self._app = app
        self._register_timeout = register_timeout

    async def hang_up_leftovers(self, calls: Mapping[str, str | None]) -> set[str]:
        """``LeftoverPbx``: DELETE what a previous run left of these calls (the remote leg:
        the call id for outbound calls, the stored channel id for inbound ones; the media,
        warm-transfer legs and bridges named after the call id), then check ARI's lists.
        Returns the call ids of which a channel or bridge is still listed."""
        channels: dict[str, str] = {}
        bridges: dict[str, str] = {}
        for call_id, remote in calls.items():
            if self._calls.get(call_id) is not None:
                continue  # a call of this run, not a leftover
            for channel in (remote or call_id, *(leg_id(call_id, s) for s in _LEFTOVER_LEGS)):
                channels[channel] = call_id
            for bridge in (leg_id(call_id, s) for s in _LEFTOVER_BRIDGES):
                bridges[bridge] = call_id
        for channel in channels:
            await self._ari.hangup_channel(channel, "normal")  # 404: not there, fine
        for bridge in bridges:
            await destroy_bridge(self._ari, bridge)
        listed = await self._listed()
        return {call_id for leg, call_id in (channels | bridges).items() if leg in listed}

    async def adopt_call(self, call_id: str, remote_ref: str | None) -> bool:
        """``ResumablePbx``: take over an answered call a previous run left (``kill -9``).

        The remote leg (``remote_ref``, else the call id) must be up and still in our Stasis
        app; the previous run's media, warm-transfer legs and bridges are deleted (checked), so
        ``call_media`` opens fresh ones under the same ids. On any failure nothing stays
        registered, so ``hang_up_leftovers`` can clear the call."""
        remote = remote_ref or call_id
        if self._calls.get(call_id) is not None or not is_token(remote):
            return False
        # Right after start-up the links may still be coming up: the caller bounds the wait.
        boot = await self._reconciler.wait_settled(max(self._register_timeout, ADOPT_SETTLE_WAIT))
        try:
            found = await self._ari.request("GET", f"/channels/{_seg(remote)}")
        except AriHttpError as exc:
            if exc.status == 404:
                return False
            raise
        channel = channel_from_json(found)
        if channel is None or not _waits_in_app(channel, self._app):
            return False
        await self._clear_leftover_legs(call_id)
        direction = "inbound" if remote != call_id else "outbound"
        legs = self._calls.add(call_id, remote, direction)
        legs.boot = boot
        try:
            await self._ari.subscribe_channel(remote)  # its ChannelDestroyed, whatever happens
            self._media.entered_stasis(remote)  # it is there already: no StasisStart comes
            self._calls.mark_answered(call_id)  # the engine has it in progress: not reported
            # Gone while we looked: its ChannelDestroyed went to nobody.
            await self._ari.request("GET", f"/channels/{_seg(remote)}")
        except BaseException as exc:
            self._calls.forget(call_id)
            self._media.left_stasis(remote)
            # Gone: 404 from the look, 422 ("Event source does not exist") from the
            # subscription when the channel went between the first look and it.
            if isinstance(exc, AriHttpError) and exc.status in (404, 422):
                return False
            raise
        log.info("call %s: adopted from a previous run", mask_call_id(call_id))
        return True

    async def _clear_leftover_legs(self, call_id: str) -> None:
        """Delete the media / warm-transfer legs and bridges a previous run left of the call,
        until ARI lists none of them (a new leg reuses their ids)."""
        channels = [leg_id(call_id, suffix) for suffix in _LEFTOVER_LEGS]
        bridges = [leg_id(call_id, suffix) for suffix in _LEFTOVER_BRIDGES]
        for channel in channels:
            await self._ari.hangup_channel(channel, "normal")
        for bridge in bridges:
            await destroy_bridge(self._ari, bridge)
        for _ in range(40):  # a DELETEd channel or bridge leaves the lists within milliseconds
            if not (await self._listed()).intersection(channels, bridges):
                return
            await asyncio.sleep(0.05)
        raise PbxError("the media legs a previous run left are still up")

    async def _listed(self) -> set[str]:
        """The ids of every channel and bridge ARI lists now."""
        listed = {c.id for c in await self._ari.list_channels()}
        found = await self._ari.request("GET", "/bridges")
        if isinstance(found, list):
            listed |= {str(b.get("id", "")) for b in found if isinstance(b, dict)}
        return listed


def _waits_in_app(channel: AriChannel, app: str) -> bool:
    """An answered channel still in ``app``'s Stasis."""
    if channel.state != "Up":
        return False
    app_data = channel.dialplan_app_data
    return channel.dialplan_app_name == "Stasis" and app_data.split(",", 1)[0] == app


def _seg(value: str) -> str:
    return quote(value, safe="")
