"""``PbxAdapter``: what the Asterisk and FreeSWITCH adapters share, whatever their wire.

A subclass connects its wire clients in ``_connect`` (pushing their ``aclose`` on
``self._exit``) and builds its parts in its constructor, each handed what it needs; this base
holds what they all use:

* the lifecycle: ``start`` once (the event sink, the background tasks, then ``_connect``), an
  idempotent ``aclose`` (the background tasks cancelled, the clients closed, the tasks awaited),
  ``async with``;
* the background tasks, owned by one ``voicedock.aio.Supervisor`` (``_spawn``, handed to the
  parts as a ``Spawn``): a failure is logged (a ``PbxError`` as one warning line), never
  propagated;
* the calls (``pbx/legs`` ``CallRegistry``) and their reports to the event sink
  (``pbx/reports`` ``CallReports``);
* inbound acceptance: the inbound handler gives an offered call our call id, or rejects it;
  while the node drains no call is offered: it goes to another live node or is rejected
  (``turn_inbound_away``, asked by each adapter's inbound part through ``inbound_away``).

Reconciling the calls after a (re)connect or a restart is ``pbx/reconcile`` ``Reconciler``'s,
which each adapter builds with its own ``ReconcileHooks``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Self

from voicedock.aio import Closable, Coro, Supervisor
from voicedock.domain.ids import is_call_id
from voicedock.errors import PbxError
from voicedock.pbx.base import InboundAway, InboundCall, InboundHandler, PbxEventSink
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.reports import CallReports

__all__ = ["PbxAdapter", "Spawn"]

# How an adapter's parts start a background task: owned by the adapter, never outliving it.
Spawn = Callable[[Coro[object]], None]


class PbxAdapter(Closable):
    """The shared core of a PBX adapter; ``AsteriskPbx`` and ``FreeswitchPbx`` extend it."""

    def __init__(self, log: logging.Logger) -> None:
        """``log``: the adapter's."""
        self._calls = CallRegistry()
        self._tasks = Supervisor(type(self).__name__, log, expected=(PbxError,))
        self._reports = CallReports(self._calls, log, self._tasks)
        self._inbound: InboundHandler | None = None
        self._away: InboundAway | None = None  # the node drains: no inbound call is taken
        self._exit = contextlib.AsyncExitStack()
        self._started = False
        self._closed = False

    async def _connect(self) -> None:
        """Start the wire clients (their ``aclose`` pushed on ``self._exit``)."""
        raise NotImplementedError

    # --- lifecycle --------------------------------------------------------------------------

    def set_inbound_handler(self, handler: InboundHandler) -> None:
        """``InboundPbx``: who gives an inbound call our call id (the engine)."""
        self._inbound = handler

    def turn_inbound_away(self, away: InboundAway | None) -> None:
        """``DrainingPbx``: new inbound calls go elsewhere or are rejected (``None``: taken)."""
        self._away = away

    def inbound_away(self) -> InboundAway | None:
        """Where a new inbound call goes instead of this node (``None``: it is offered)."""
        return self._away

    async def start(self, sink: PbxEventSink) -> None:
        if self._started or self._closed:
            raise PbxError(f"{type(self).__name__}.start called twice or after aclose")
        self._started = True
        self._reports.open(sink)
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

    def _spawn(self, coro: Coro[object]) -> None:
        """Run ``coro`` in the background until it ends or the adapter closes; once closing
        (the clients closing may still report), ``coro`` is closed unrun."""
        if self._closed:
            coro.close()
            return
        self._tasks.spawn(coro)

    # --- inbound ----------------------------------------------------------------------------

    async def _offer_inbound(self, call: InboundCall) -> str | None:
        """Our call id for the offered call; ``None``: reject it (no handler, or the handler
        gave no call id)."""
        if self._inbound is None:
            return None
        call_id = await self._inbound(call)
        return call_id if call_id is not None and is_call_id(call_id) else None
