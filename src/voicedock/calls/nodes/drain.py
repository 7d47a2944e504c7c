"""A node that drains: it takes no new call, lets the calls it holds finish, then is done.

``SIGTERM`` (``api/serve.py``) or ``voicedock nodes drain`` (the lease row marked, seen at the
node's next renewal: ``Node.drain_asked``) starts it; ``run``, a task of the service, carries it
out:

* the lease row says the node drains (``Node.start_draining``): the other nodes leave it out of
  the inbound calls they share (Asterisk: ``VOICEDOCK_APPS``; FreeSWITCH: its claims), and the
  PBX connection sends a caller that still reaches it to another live node, or rejects it when
  none is left (``pbx.base.InboundAway``);
* the campaign dialer dials nothing more, neither a contact nor a scheduled call come due (the
  service's ``can_dial``): the other nodes' dialers take them;
* a new ``POST /calls/outbound`` is handed on to another live node (``forward``), whose answer
  the client gets; with none left (SQLite, or the last node) it is ``503 Node draining`` with
  ``Retry-After``. A call scheduled for later is stored as ever: a dialer places it when due;
* the calls the node holds (stored as its own and not ended, or still served here until their
  record is stored) go on untouched. Once none is left, or ``[node] drain_timeout_seconds``
  have passed, ``finished`` is set: the process stops, and what is left of its calls is hung up
  as a stop always did (``end_reason`` ``shutdown``). The calls held are looked at again as
  soon as a call changes (``CallsEnding``, an observer of the engine), else every second.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Collection, Sequence

from voicedock.aio import first_of
from voicedock.calls.errors import NodeDraining
from voicedock.calls.nodes.command_relay import Forwarded, ForwardedAnswer
from voicedock.calls.nodes.lease import Node
from voicedock.config import NodeSettings
from voicedock.domain.records import Call, CallEvent, CallMessage
from voicedock.errors import StoreError
from voicedock.store.base import Store, Transaction

log = logging.getLogger("voicedock.calls.nodes")

DRAIN_POLL = 1.0  # seconds between looks at the calls the node still holds, at the most
SETTLE = 0.05  # seconds a call's change takes to commit after its observers heard it


class CallsEnding:
    """A ``CallObserver`` that wakes the drain when a call changes (a status, its end-of-call
    report): the node may hold one call less."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()

    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        if event.type == "status":
            self.changed.set()

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        self.changed.set()


class Drain:
    def __init__(
        self,
        node: Node,
        store: Store,
        settings: NodeSettings,
        *,
        serving: Callable[[], Collection[str]],
        ending: CallsEnding | None = None,
        poll: float = DRAIN_POLL,
    ) -> None:
        """``serving``: the ids of the calls whose conversation this node runs (until each
        one's record is stored); ``ending``: the engine's observer that says when a call
        changed."""
        self._node = node
        self._store = store
        self._timeout = float(settings.drain_timeout_seconds)
        self._retry_after = settings.lease_seconds
        self._serving = serving
        self._ending = ending if ending is not None else CallsEnding()
        self._poll = poll
        self._asked = asyncio.Event()
        self._why = ""
        self.finished = asyncio.Event()  # no call left, or the timeout passed: stop now
        self.left: set[str] = set()  # the calls held when the drain ended (timeout: stopped)

    @property
    def draining(self) -> bool:
        return self._node.draining

    def request(self, why: str) -> None:
        """Drain (``why``: what asked, for the log); idempotent."""
        if not self._asked.is_set():
            self._why = why
            self._asked.set()

    async def run(self) -> None:
        """Wait until asked, then drain; ``finished`` once the node holds no call or the drain
        timeout passed (a task of the service: cancelled when it stops first). A drain that
        fails is over: the node stops rather than wait for a signal that may never come."""
        asked = self._node.drain_asked
        index = await first_of(self._asked.wait(), asked.wait())
        why = self._why if index is not None and index[0] == 0 else "voicedock nodes drain"
        try:
            await self._drain(why)
        finally:
            self.finished.set()

    async def _drain(self, why: str) -> None:
        try:
            await self._node.start_draining()
        except Exception:  # the lease and the PBX are told again at each renewal
            log.exception("node %s: others not told it drains yet", self._node.id)
        held = await self.held()
        log.warning(
            "node %s drains (%s): it takes no new call; %d call(s) in progress finish first "
            "(at most %g s)",
            self._node.id,
            why,
            len(held),
            self._timeout,
        )
        try:
            async with asyncio.timeout(self._timeout):
                while held:
                    changed = self._ending.changed
                    changed.clear()
                    if await first_of(changed.wait(), within=self._poll) is not None:
                        await asyncio.sleep(SETTLE)
                    held = await self.held()
            log.warning("node %s drained: no call left", self._node.id)
        except TimeoutError:
            self.left = held
            log.warning(
                "node %s: [node] drain_timeout_seconds (%g s) passed with %d call(s) still in "
                "progress: stopping (they are hung up)",
                self._node.id,
                self._timeout,
                len(held),
            )

    async def held(self) -> set[str]:
        """The calls this node holds: served here, or stored as its own and not ended (a call
        still ringing, one answered whose conversation has not started)."""
        held = set(self._serving())
        try:
            held |= {call.id for call in await self._store.list_active_calls(self._node.id)}
        except StoreError as exc:  # its served calls still count; the next look asks again
            log.warning("node %s: calls held not read (%s)", self._node.id, exc)
        return held

    async def forward(self, asked: Forwarded) -> ForwardedAnswer:
        """A new ``POST /calls/outbound`` while draining: answered by another live node that
        does not drain; ``NodeDraining`` (503) when there is none."""
        others = self._node.others
        if not others:
            raise NodeDraining(
                f"node {self._node.id!r} is draining (it is stopping) and no other node takes "
                "calls now; retry after the time in Retry-After",
                retry_after_seconds=self._retry_after,
            )
        return await self._node.commands.forward(random.choice(others), asked)


__all__ = ["DRAIN_POLL", "CallsEnding", "Drain"]
