"""The open event streams (``GET /calls/{id}/events``) and their caps, on every node.

Each open stream polls the store, so they are capped: per API key and per organization
(``[limits] open_streams_per_key``, ``open_streams_per_organization``) counted on every node
that shares the database, and ``MAX_STREAMS`` on this node. A stream is counted by a row of
``event_streams`` naming this node and its run (``store/sql/streams.py``): the count and the
new row commit together under the organization's turn, so two nodes never both give out the
last place. A stream that ends (the call ended, the client went away, the key was revoked)
deletes its row at once; a row a store error kept is deleted with the next stream this node
opens or closes. A node that dies leaves its rows: they stop counting when its lease expires,
and go when a surviving node settles it (``calls/nodes/lease.py``).

SQLite serves one node: the same table, one node's rows.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from voicedock.config import LimitsSettings
from voicedock.domain.records import EventStream
from voicedock.errors import RateLimited, StoreError
from voicedock.store.base import Store

log = logging.getLogger("voicedock.calls")

MAX_STREAMS = 200  # per node: each open stream polls the store
STREAM_RETRY_SECONDS = 5  # Retry-After of a stream refused by a cap


class EventStreams:
    """This node's open event streams; ``opened`` admits one within the caps."""

    def __init__(self, store: Store, limits: LimitsSettings, node_id: str, node_run: str) -> None:
        self._store = store
        self._limits = limits
        self._node_id = node_id
        self._node_run = node_run
        self.open = 0  # on this node
        self._unreleased: set[str] = set()  # rows of ended streams a store error kept

    @contextlib.asynccontextmanager
    async def opened(self, api_key_id: str, organization_id: str) -> AsyncIterator[None]:
        """Count one stream for the block, or raise ``RateLimited`` when a cap is reached."""
        if self.open >= MAX_STREAMS:
            raise _refused("this node has too many open event streams")
        self.open += 1  # taken before the store is asked: this node's cap holds meanwhile
        try:
            stream_id = await self._admit(api_key_id, organization_id)
            try:
                yield
            finally:
                await self._release(stream_id)
        finally:
            self.open -= 1

    async def _admit(self, api_key_id: str, organization_id: str) -> str:
        per_key = self._limits.open_streams_per_key
        per_organization = self._limits.open_streams_per_organization
        stream_id = uuid.uuid4().hex
        leftovers = sorted(self._unreleased)
        try:
            async with self._store.transaction() as tx:
                await tx.delete_event_streams(leftovers)
                now = await tx.clock()
                counts = await tx.count_event_streams(organization_id, api_key_id, now)
                if per_key and counts.api_key >= per_key:
                    refused = f"this API key has {per_key} open event streams, its most"
                elif per_organization and counts.organization >= per_organization:
                    refused = (
                        f"this organization has {per_organization} open event streams, its most"
                    )
                else:
                    refused = ""
                if not refused:
                    stream = EventStream(
                        stream_id, self._node_id, self._node_run, organization_id, api_key_id, now
                    )
                    await tx.insert_event_stream(stream)
        except BaseException:
            # Cut short (a store error, the client gone): had its row committed, it goes later.
            self._unreleased.add(stream_id)
            raise
        self._unreleased.difference_update(leftovers)
        if refused:
            raise _refused(refused + " (on every node)")
        return stream_id

    async def _release(self, stream_id: str) -> None:
        self._unreleased.add(stream_id)  # until its row is gone (a cancellation included)
        ids = sorted(self._unreleased)
        try:
            async with self._store.transaction() as tx:
                await tx.delete_event_streams(ids)
        except StoreError as exc:
            log.warning("%d event stream(s) not released yet (%s)", len(ids), exc)
            return
        self._unreleased.difference_update(ids)


def _refused(why: str) -> RateLimited:
    return RateLimited(
        f"{why}; close one or retry later",
        error="Too many streams",
        retry_after_seconds=STREAM_RETRY_SECONDS,
    )


__all__ = ["MAX_STREAMS", "STREAM_RETRY_SECONDS", "EventStreams"]
