"""What reconcile (``pbx/reconcile``) asks of Asterisk: ``AsteriskRestarts``, its hooks.

The links are the ARI events websocket (the Stasis app registered) and, when calls are
originated through AMI, the AMI login; each reconnect counts one up. A changed Asterisk start
time (ARI ``/asterisk/info``) is a restart: whatever is left of the calls placed before it is
hung up, every leg and bridge, and checked against the fresh PBX's channel list. A call
Asterisk no longer lists, or lost in a restart, ends as ``AsteriskHangups`` ends it.
"""

from __future__ import annotations

import asyncio
import logging

from voicedock.domain.ids import mask_call_id
from voicedock.pbx.asterisk.ami.client import AmiClient
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.hangups import AsteriskHangups
from voicedock.pbx.asterisk.media.legs import destroy_bridge
from voicedock.pbx.legs import CallLegs
from voicedock.pbx.reconcile import too_young

__all__ = ["NOT_READY", "AsteriskRestarts"]

log = logging.getLogger("voicedock.pbx.asterisk.pbx")

NOT_READY = (
    "Asterisk is not ready: ARI app not registered, AMI down, or the reconnect not reconciled yet"
)


class AsteriskRestarts:
    """``ReconcileHooks`` of one ``AsteriskPbx``."""

    not_connected: tuple[type[Exception], ...] = ()

    def __init__(self, ari: AriClient, ami: AmiClient | None, hangups: AsteriskHangups) -> None:
        self._ari = ari
        self._ami = ami
        self._hangups = hangups
        self._startup_time: str | None = None  # Asterisk's, as reconcile last recorded it
        self._startup_seen: str | None = None  # as the restart check saw it

    def links(self) -> tuple[int, int]:
        """Which ARI and AMI connections are current (each reconnect counts one up)."""
        return self._ari.connect_count, self._ami.connect_count if self._ami is not None else 0

    def links_up(self) -> bool:
        return self._ari.registered and (self._ami is None or self._ami.connected)

    async def check_restart(self) -> bool:
        """A changed Asterisk start time (ARI ``/asterisk/info``) is a restart."""
        self._startup_seen = startup = await self._ari.startup_time()
        return bool(self._startup_time and startup and startup != self._startup_time)

    def record_boot(self) -> bool:
        self._startup_time = self._startup_seen or self._startup_time
        return bool(self._startup_time)

    async def listed_channels(self) -> set[str]:
        return {c.id for c in await self._ari.list_channels()}

    def may_be_unlisted(self, legs: CallLegs, now: float) -> bool:
        return too_young(legs, now)

    async def hang_up_restart_leftovers(self, old: list[CallLegs]) -> bool:
        """Every leg and bridge of the calls the restarted Asterisk still has is deleted."""
        present = await self.listed_channels()
        for legs in old:
            for channel in legs.owned_channels():
                if channel in present:
                    await self._ari.hangup_channel(channel, "normal")
                    log.warning(
                        "call %s: a leg outlived the restart; hung up", mask_call_id(legs.call_id)
                    )
            for bridge in sorted(legs.bridges):
                await destroy_bridge(self._ari, bridge)
        ours = {channel for legs in old for channel in legs.owned_channels()}
        for _ in range(20):  # a DELETEd channel leaves the list within milliseconds
            if not ours & await self.listed_channels():
                return True
            await asyncio.sleep(0.05)
        return False

    async def end_missing(self, legs: CallLegs) -> None:
        await self._hangups.end_missing(legs)

    async def end_lost_in_restart(self, legs: CallLegs) -> None:
        await self._hangups.end_lost_in_restart(legs)
