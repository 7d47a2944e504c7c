"""``Reconciler``: the calls an adapter believes live, settled against its PBX after each
(re)connect, and the settled connection no call is placed or accepted before.

* The settled connection: no call is placed or accepted on a connection that ``reconcile`` has
  not checked for a restart yet (``wait_settled``); each leg is stamped with the boot it was
  placed under, and a call that waited across a restart is refused (a caller the PBX offered
  on the connection is of the boot that check found: ``wait_checked``).
* ``reconcile`` (after each (re)connect): a restarted PBX ends every call placed before
  (whatever the fresh PBX has of them is hung up first and checked; PBX_RESTARTED, then a
  "pbx-restart" HANGUP each); else the calls the PBX no longer lists end "reconciled", except
  those too young to be listed yet, looked at again after a grace.

What differs per PBX (its links, how it tells a restart, what it lists, how a call it lost
ends) is the adapter's ``ReconcileHooks``: ``pbx/asterisk/restarts.py``,
``pbx/freeswitch/restarts.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Hashable
from typing import Protocol

from voicedock.errors import PbxError, PbxUnavailable
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.base import PbxEvent, PbxEventKind
from voicedock.pbx.legs import CallLegs, CallRegistry
from voicedock.pbx.reports import CallReports

__all__ = ["ADOPT_SETTLE_WAIT", "RECONCILE_GRACE", "ReconcileHooks", "Reconciler", "too_young"]

# A call younger than this may not be on the PBX's channel list yet (its originate is still
# creating the channel): it is looked at again after this long.
RECONCILE_GRACE = 2.0
# How long adopting a previous run's call waits for the links to come up and be reconciled.
ADOPT_SETTLE_WAIT = 5.0


def too_young(legs: CallLegs, now: float) -> bool:
    """The call is too young to be judged missing from the PBX's list."""
    return now - legs.created_at < RECONCILE_GRACE


class ReconcileHooks(Protocol):
    """What reconcile asks of one PBX: its links, whether it restarted, what it lists, and
    how a call it lost ends."""

    # An error that means "not connected now" (FreeSWITCH's ``EslNotConnected``): reconcile
    # returns without settling, and the next (re)connect reconciles again.
    @property
    def not_connected(self) -> tuple[type[Exception], ...]: ...

    def links(self) -> Hashable:
        """Which connections are current (each reconnect changes it)."""
        ...

    def links_up(self) -> bool:
        """Every connection a call needs is up right now."""
        ...

    async def check_restart(self) -> bool:
        """Ask the PBX when it started; True if it started again since the last check."""
        ...

    def record_boot(self) -> bool:
        """The restart check is done (a restart handled): record the start it saw; True once
        the PBX's start is known, so that the connection may be settled."""
        ...

    async def listed_channels(self) -> set[str]:
        """The ids of the channels the PBX lists now."""
        ...

    def may_be_unlisted(self, legs: CallLegs, now: float) -> bool:
        """The call may be live and yet missing from the PBX's list (``too_young``, say)."""
        ...

    async def hang_up_restart_leftovers(self, old: list[CallLegs]) -> bool:
        """Hang up whatever the restarted PBX has of these calls (an originate that crossed
        the restart); True once none of their legs is there any more."""
        ...

    async def end_missing(self, legs: CallLegs) -> None:
        """The PBX no longer has the call: report its "reconciled" HANGUP, let go of it."""
        ...

    async def end_lost_in_restart(self, legs: CallLegs) -> None:
        """The call was lost in a restart: report its "pbx-restart" HANGUP, let go of it."""
        ...


class Reconciler:
    """One adapter's calls against its PBX, after each (re)connect."""

    def __init__(
        self,
        pbx: ReconcileHooks,
        calls: CallRegistry,
        reports: CallReports,
        spawn: Spawn,
        *,
        pbx_name: str,
        not_ready: str,
        log: logging.Logger,
    ) -> None:
        """``pbx_name``: the PBX as messages name it ("Asterisk"); ``not_ready``: the
        ``PbxUnavailable`` of a call that waited too long for a settled connection."""
        self._pbx = pbx
        self._calls = calls
        self._reports = reports
        self._spawn = spawn
        self._pbx_name = pbx_name
        self._not_ready = not_ready
        self._log = log
        self._lock = asyncio.Lock()
        self._boot = 0  # restarts of the PBX seen; each leg is stamped with it
        self._settled_links: Hashable | None = None  # the connections reconcile last settled
        self._settled = asyncio.Event()

    # --- the settled connection -------------------------------------------------------------

    def settle(self, links: Hashable) -> None:
        """These connections are checked: calls may go out on them."""
        self._settled_links = links
        self._settled.set()

    def _is_settled(self) -> bool:
        return self._pbx.links_up() and self._settled_links == self._pbx.links()

    async def wait_settled(self, within: float) -> int:
        """Until the current connections are up and reconcile has checked them for a restart;
        the boot to stamp a new leg with. ``PbxUnavailable`` (``not_ready``) when that takes
        longer than ``within``, or when a restart was detected meanwhile: the engine has failed
        every call it had by then, this one included, so it must not be placed."""
        boot = self._boot
        await self._until_settled(within)
        if self._boot != boot:
            raise PbxUnavailable(
                f"{self._pbx_name} restarted while the call waited; it was not placed"
            )
        return boot

    async def wait_checked(self, within: float) -> int:
        """Until the current connections are up and checked for a restart, as
        ``wait_settled``; the boot of a call the PBX offered on them (an inbound caller), which
        a restart handled meanwhile does not end: the caller reached the fresh PBX."""
        await self._until_settled(within)
        return self._boot

    async def _until_settled(self, within: float) -> None:
        try:
            async with asyncio.timeout(within):
                while not self._is_settled():
                    self._settled.clear()
                    # Woken by reconcile; the short poll covers a flapping connection.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.05):
                            await self._settled.wait()
        except TimeoutError:
            raise PbxUnavailable(self._not_ready) from None

    # --- reconcile --------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Settle every call we believe live against the PBX (after each (re)connect): after
        a restart, end every call placed before; else end those the PBX no longer has."""
        recheck = False
        async with self._lock:
            links = self._pbx.links()
            try:
                if await self._pbx.check_restart():
                    await self._end_calls_of_previous_boot()
                else:
                    recheck = await self._end_missing_calls(await self._pbx.listed_channels())
            except self._pbx.not_connected:
                return  # the next (re)connect reconciles again
            # Only once the restart is handled: a failed attempt is retried as one.
            if self._pbx.record_boot():
                self.settle(links)
        if recheck:
            self._spawn(self._reconcile_later())

    async def _end_calls_of_previous_boot(self) -> None:
        """The PBX restarted: end the calls placed before, once what the fresh PBX has of them
        is hung up."""
        old = [legs for legs in self._calls.live() if legs.boot <= self._boot]
        self._log.warning("%s restarted: ending %d live calls", self._pbx_name, len(old))
        if not await self._pbx.hang_up_restart_leftovers(old):
            raise PbxError("legs of calls lost in the restart are still up")
        await self._reports.emit(PbxEvent("", PbxEventKind.PBX_RESTARTED))
        for legs in old:
            await self._pbx.end_lost_in_restart(legs)
        # After the engine heard PBX_RESTARTED: an originate still waiting is refused.
        self._boot += 1

    async def _end_missing_calls(self, present: set[str]) -> bool:
        """A reconnect to the same PBX: end the calls it no longer lists; True if a call too
        young to judge needs another look."""
        now = time.monotonic()
        recheck = False
        for legs in self._calls.live():
            if legs.main_channel in present:
                continue
            if self._pbx.may_be_unlisted(legs, now):
                recheck = True
                continue
            await self._pbx.end_missing(legs)
        return recheck

    async def _reconcile_later(self) -> None:
        await asyncio.sleep(RECONCILE_GRACE)
        await self.reconcile()
