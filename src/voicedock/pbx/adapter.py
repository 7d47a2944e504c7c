"""``PbxAdapter``: what the Asterisk and FreeSWITCH adapters share, whatever their wire.

A subclass connects its wire clients in ``_connect`` (pushing their ``aclose`` on
``self._exit``) and says what its PBX lists and how it tells a restart; this base holds the rest:

* the lifecycle: ``start`` once (the event sink, the background tasks, then ``_connect``), an
  idempotent ``aclose`` (the background tasks cancelled, the clients closed, the tasks awaited),
  ``async with``;
* the background tasks, owned by one ``voicedock.aio.Supervisor`` (``_spawn``): a failure is
  logged (a ``PbxError`` as one warning line), never propagated;
* ``_emit``: a ``PbxEvent`` to the event sink (the service's ``CallRunner``; a failing sink
  is logged), and the reports made once per call (``_report_ringing``, ``_report_answered``,
  ``_report_hangup``) and the caller's digits (``_report_dtmf``);
* the settled connection: no call is placed or accepted on a connection that ``reconcile``
  has not checked for a restart yet (``_wait_settled``); each leg is stamped with the boot it
  was placed under, and a call that waited across a restart is refused;
* ``reconcile`` (after each (re)connect): a restarted PBX ends every call placed before
  (whatever the fresh PBX has of them is hung up first and checked; PBX_RESTARTED, then a
  "pbx-restart" HANGUP each); else the calls the PBX no longer lists end "reconciled",
  except those too young to be listed yet, looked at again after a grace;
* inbound acceptance: the inbound handler gives an offered call our call id, or rejects it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Hashable
from typing import Any, Self

from voicedock.aio import Supervisor
from voicedock.domain.ids import is_call_id
from voicedock.errors import PbxError, PbxUnavailable
from voicedock.pbx.base import InboundCall, InboundHandler, PbxEvent, PbxEventKind, PbxEventSink
from voicedock.pbx.legs import CallLegs, CallRegistry

__all__ = ["ADOPT_SETTLE_WAIT", "RECONCILE_GRACE", "PbxAdapter"]

# A call younger than this may not be on the PBX's channel list yet (its originate is still
# creating the channel): it is looked at again after this long.
RECONCILE_GRACE = 2.0
# How long adopting a previous run's call waits for the links to come up and be reconciled.
ADOPT_SETTLE_WAIT = 5.0


class PbxAdapter:
    """The shared core of a PBX adapter; ``AsteriskPbx`` and ``FreeswitchPbx`` extend it."""

    # An error that means "not connected now" (FreeSWITCH's ``EslNotConnected``): reconcile
    # returns without settling, and the next (re)connect reconciles again.
    _not_connected: tuple[type[Exception], ...] = ()

    def __init__(self, pbx_name: str, log: logging.Logger) -> None:
        """``pbx_name``: the PBX as messages name it ("Asterisk"); ``log``: the adapter's."""
        self._pbx_name = pbx_name
        self._log = log
        self._calls = CallRegistry()
        self._sink: PbxEventSink | None = None
        self._inbound: InboundHandler | None = None
        self._tasks = Supervisor(type(self).__name__, log, expected=(PbxError,))
        self._exit = contextlib.AsyncExitStack()
        self._started = False
        self._closed = False
        self._reconcile_lock = asyncio.Lock()
        self._boot = 0  # restarts of the PBX seen; each leg is stamped with it
        self._settled_links: Hashable | None = None  # the connections reconcile last settled
        self._settled = asyncio.Event()

    # --- what an adapter says of its wire ---------------------------------------------------

    async def _connect(self) -> None:
        """Start the wire clients (their ``aclose`` pushed on ``self._exit``)."""
        raise NotImplementedError

    def _links(self) -> Hashable:
        """Which connections are current (each reconnect changes it)."""
        raise NotImplementedError

    def _links_up(self) -> bool:
        """Every connection a call needs is up right now."""
        raise NotImplementedError

    async def _check_restart(self) -> bool:
        """Ask the PBX when it started; True if it started again since the last check."""
        raise NotImplementedError

    def _record_boot(self) -> bool:
        """The restart check is done (a restart handled): record the start it saw; True once
        the PBX's start is known, so that the connection may be settled."""
        return True

    async def _listed_channels(self) -> set[str]:
        """The ids of the channels the PBX lists now."""
        raise NotImplementedError

    async def _hang_up_restart_leftovers(self, old: list[CallLegs]) -> bool:
        """Hang up whatever the restarted PBX has of these calls (an originate that crossed
        the restart); True once none of their legs is there any more."""
        raise NotImplementedError

    async def _end_missing(self, legs: CallLegs) -> None:
        """The PBX no longer has the call: report its "reconciled" HANGUP, let go of it."""
        raise NotImplementedError

    async def _end_lost_in_restart(self, legs: CallLegs) -> None:
        """The call was lost in a restart: report its "pbx-restart" HANGUP, let go of it."""
        raise NotImplementedError

    def _may_be_unlisted(self, legs: CallLegs, now: float) -> bool:
        """The call may be live and yet missing from the PBX's list (too young to judge)."""
        return now - legs.created_at < RECONCILE_GRACE

    # --- lifecycle --------------------------------------------------------------------------

    def set_inbound_handler(self, handler: InboundHandler) -> None:
        """``InboundPbx``: who gives an inbound call our call id (the engine)."""
        self._inbound = handler

    async def start(self, sink: PbxEventSink) -> None:
        if self._started or self._closed:
            raise PbxError(f"{type(self).__name__}.start called twice or after aclose")
        self._started = True
        self._sink = sink
        await self._tasks.start()
        self._exit.push_async_callback(self._tasks.aclose)  # last: awaits the cancelled tasks
        await self._connect()

    async def aclose(self) -> None:
        """Stop reporting and disconnect; live calls are left to the PBX. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks.children:
            task.cancel()
        await self._exit.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background until it ends or the adapter closes; once closing
        (the clients closing may still report), ``coro`` is closed unrun."""
        if self._closed:
            coro.close()
            return
        self._tasks.spawn(coro)

    # --- events -----------------------------------------------------------------------------

    async def _emit(self, event: PbxEvent) -> None:
        if self._sink is None:
            return
        try:
            await self._sink(event)
        except Exception:  # noqa: BLE001 - a failing sink is logged, the adapter goes on
            self._log.exception("PBX event sink failed for %s", event.kind)

    async def _report_ringing(self, call_id: str) -> None:
        if self._calls.mark_ringing(call_id):
            await self._emit(PbxEvent(call_id, PbxEventKind.RINGING))

    async def _report_answered(self, call_id: str) -> None:
        if self._calls.mark_answered(call_id):
            await self._emit(PbxEvent(call_id, PbxEventKind.ANSWERED))

    async def _report_dtmf(self, call_id: str, digit: str) -> None:
        await self._emit(PbxEvent(call_id, PbxEventKind.DTMF, digit=digit))

    async def _report_hangup(
        self,
        call_id: str,
        *,
        cause: int | None = None,
        tech_cause: int | None = None,
        detail: str = "",
    ) -> bool:
        """The call's HANGUP, the first time only; True if it was reported now."""
        if not self._calls.mark_ended(call_id):
            return False
        event = PbxEvent(
            call_id, PbxEventKind.HANGUP, cause=cause, tech_cause=tech_cause, detail=detail
        )
        await self._emit(event)
        return True

    # --- inbound ----------------------------------------------------------------------------

    async def _offer_inbound(self, call: InboundCall) -> str | None:
        """Our call id for the offered call; ``None``: reject it (no handler, or the handler
        gave no call id)."""
        if self._inbound is None:
            return None
        call_id = await self._inbound(call)
        return call_id if call_id is not None and is_call_id(call_id) else None

    # --- the settled connection -------------------------------------------------------------

    def _settle(self, links: Hashable) -> None:
        self._settled_links = links
        self._settled.set()

    def _is_settled(self) -> bool:
        return self._links_up() and self._settled_links == self._links()

    async def _wait_settled(self, within: float, not_ready: str) -> int:
        """Until the current connections are up and reconcile has checked them for a restart;
        the boot to stamp a new leg with. ``PbxUnavailable`` (``not_ready``) when that takes
        longer than ``within``, or when a restart was detected meanwhile: the engine has failed
        every call it had by then, this one included, so it must not be placed."""
        boot = self._boot
        try:
            async with asyncio.timeout(within):
                while not self._is_settled():
                    self._settled.clear()
                    # Woken by reconcile; the short poll covers a flapping connection.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.05):
                            await self._settled.wait()
        except TimeoutError:
            raise PbxUnavailable(not_ready) from None
        if self._boot != boot:
            raise PbxUnavailable(
                f"{self._pbx_name} restarted while the call waited; it was not placed"
            )
        return boot

    # --- reconcile --------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Settle every call we believe live against the PBX (after each (re)connect): after
        a restart, end every call placed before; else end those the PBX no longer has."""
        recheck = False
        async with self._reconcile_lock:
            links = self._links()
            try:
                if await self._check_restart():
                    await self._end_calls_of_previous_boot()
                else:
                    recheck = await self._end_missing_calls(await self._listed_channels())
            except self._not_connected:
                return  # the next (re)connect reconciles again
            # Only once the restart is handled: a failed attempt is retried as one.
            if self._record_boot():
                self._settle(links)
        if recheck:
            self._spawn(self._reconcile_later())

    async def _end_calls_of_previous_boot(self) -> None:
        """The PBX restarted: end the calls placed before, once what the fresh PBX has of them
        is hung up."""
        old = [legs for legs in self._calls.live() if legs.boot <= self._boot]
        self._log.warning("%s restarted: ending %d live calls", self._pbx_name, len(old))
        if not await self._hang_up_restart_leftovers(old):
            raise PbxError("legs of calls lost in the restart are still up")
        await self._emit(PbxEvent("", PbxEventKind.PBX_RESTARTED))
        for legs in old:
            await self._end_lost_in_restart(legs)
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
            if self._may_be_unlisted(legs, now):
                recheck = True
                continue
            await self._end_missing(legs)
        return recheck

    async def _reconcile_later(self) -> None:
        await asyncio.sleep(RECONCILE_GRACE)
        await self.reconcile()
