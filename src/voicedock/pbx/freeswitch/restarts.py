"""What reconcile (``pbx/reconcile``) asks of FreeSWITCH: ``FreeswitchRestarts``, its hooks.

The link is the authenticated Event Socket (commands and events share it); each reconnect
counts one up, and a command on a socket that is down (``EslNotConnected``) leaves the
reconcile to the next reconnect. ``BootClock`` tells a restarted FreeSWITCH from a reconnect
to the same one (the start it saw kept only once reconcile is done: a restart whose handling
was cut short is seen again); the remote leg of each call the restarted FreeSWITCH still has
is killed.
``show channels`` reads the core database, which lags a new channel: until FreeSWITCH reported
a channel, its originate may still be creating it. A call FreeSWITCH no longer lists, or lost
in a restart, ends as ``FreeswitchHangups`` ends it.
"""

from __future__ import annotations

import contextlib

from voicedock.pbx.freeswitch.boot_clock import BootClock
from voicedock.pbx.freeswitch.commands import build_uuid_kill
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import EslCommandError, EslNotConnected
from voicedock.pbx.freeswitch.hangups import FreeswitchHangups
from voicedock.pbx.legs import CallLegs
from voicedock.pbx.reconcile import too_young

__all__ = ["NOT_READY", "SETTLE_TIMEOUT", "FreeswitchRestarts"]

NOT_READY = "FreeSWITCH is not connected or not reconciled yet"
# How long a call placed or a caller accepted waits for a reconnect to be reconciled (checked
# for a restart) before it gives up.
SETTLE_TIMEOUT = 2.0


class FreeswitchRestarts:
    """``ReconcileHooks`` of one ``FreeswitchPbx``."""

    not_connected: tuple[type[Exception], ...] = (EslNotConnected,)

    def __init__(self, esl: EslClient, boot_clock: BootClock, hangups: FreeswitchHangups) -> None:
        self._esl = esl
        self._boot_clock = boot_clock
        self._hangups = hangups

    def links(self) -> int:
        return self._esl.reconnects

    def links_up(self) -> bool:
        return self._esl.connected

    async def check_restart(self) -> bool:
        return await self._boot_clock.check(self._esl)

    def record_boot(self) -> bool:
        self._boot_clock.record()
        return True

    async def listed_channels(self) -> set[str]:
        return {channel.uuid for channel in await self._esl.show_channels()}

    def may_be_unlisted(self, legs: CallLegs, now: float) -> bool:
        # Until FreeSWITCH reported the channel, originate may still be creating it.
        return not legs.seen_on_pbx and too_young(legs, now)

    async def hang_up_restart_leftovers(self, old: list[CallLegs]) -> bool:
        """The remote leg of each call the restarted FreeSWITCH still has is killed."""
        present = await self.listed_channels()
        for legs in old:
            if legs.main_channel in present and not legs.transferred:
                with contextlib.suppress(EslCommandError):  # "No such channel": gone already
                    await self._esl.api(build_uuid_kill(legs.main_channel, "NORMAL_CLEARING"))
        left = await self.listed_channels()
        return not any(legs.main_channel in left and not legs.transferred for legs in old)

    async def end_missing(self, legs: CallLegs) -> None:
        await self._hangups.end_missing(legs)

    async def end_lost_in_restart(self, legs: CallLegs) -> None:
        await self._hangups.end_lost_in_restart(legs)
