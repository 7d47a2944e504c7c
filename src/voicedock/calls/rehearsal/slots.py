"""``FairSlots``: the node's test-call slots (``[rehearsal] max_concurrent``) shared between
organizations in turn.

A freed slot goes to the organization next in turn that has a test call waiting (its oldest
one), and that organization goes to the back of the turn: one organization's many queued
scenarios take every other slot at most while another's wait, instead of all of theirs first.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairSlots:
    """``size`` slots, handed round-robin between the organizations waiting for one."""

    def __init__(self, size: int) -> None:
        self._free = size
        # organization -> its waiters, oldest first; the first organization's turn is next
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @asynccontextmanager
    async def held(self, organization_id: str) -> AsyncIterator[None]:
        """One slot, held for the block, once it is this organization's turn."""
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            await self._turn(organization_id)
        try:
            yield
        finally:
            self._release()

    async def _turn(self, organization_id: str) -> None:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(organization_id, deque()).append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # handed a slot as it was cancelled: the next one takes it
            else:
                self._forget(organization_id, granted)
            raise

    def _forget(self, organization_id: str, granted: asyncio.Future[None]) -> None:
        queue = self._waiting.get(organization_id)
        if queue is None:
            return
        try:
            queue.remove(granted)
        except ValueError:
            return
        if not queue:
            del self._waiting[organization_id]

    def _release(self) -> None:
        """The slot to the next organization in turn with a waiter, else free."""
        while self._waiting:
            organization_id, queue = self._waiting.popitem(last=False)
            granted = queue.popleft()
            if queue:
                self._waiting[organization_id] = queue  # back of the turn
            if not granted.done():
                granted.set_result(None)
                return
        self._free += 1


__all__ = ["FairSlots"]
