"""Open event streams (``GET /calls/{id}/events``) of every node, counted against their caps
(``calls/event_streams.py``); the SQL is ``store/sql/streams.py``."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from voicedock.domain.records import EventStream, OpenStreams


class StreamWrites(Protocol):
    async def count_event_streams(
        self, organization_id: str, api_key_id: str, now: datetime
    ) -> OpenStreams:
        """The organization's and the key's streams open on nodes whose lease is ahead of
        ``now``; until the transaction ends no other transaction counts or opens the
        organization's streams, on any node."""
        ...

    async def insert_event_stream(self, stream: EventStream) -> None: ...
    async def delete_event_streams(self, stream_ids: Collection[str]) -> None: ...


__all__ = ["StreamWrites"]
