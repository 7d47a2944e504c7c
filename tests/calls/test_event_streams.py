"""``EventStreams``: a stream whose row a store outage kept is not counted forever: the row goes
with the next stream the node opens, so the organization's place comes back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from voicedock.calls.event_streams import EventStreams
from voicedock.config import LimitsSettings
from voicedock.domain.records import NodeLease, Organization, utcnow
from voicedock.errors import RateLimited, StoreUnavailable
from voicedock.store import Store, open_store

pytestmark = pytest.mark.unit

ORGANIZATION = "org_streams"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'streams.db'}")
    try:
        await opened.migrate()
        now = utcnow()
        async with opened.transaction() as tx:
            await tx.insert_organization(Organization(id=ORGANIZATION, name="Streams"))
            lease = NodeLease("n1", "host", 1, "", "run-1", now, now + timedelta(minutes=5))
            await tx.put_node(lease)
        yield opened
    finally:
        await opened.aclose()


def store_down() -> contextlib.AbstractAsyncContextManager[object]:
    raise StoreUnavailable("sqlite: database is locked")


async def test_a_row_a_store_outage_kept_goes_with_the_next_stream(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = LimitsSettings(open_streams_per_key=0, open_streams_per_organization=1)
    streams = EventStreams(store, limits, "n1", "run-1")
    async with streams.opened("key-1", ORGANIZATION):
        with pytest.raises(RateLimited):  # the organization's one place is taken
            async with streams.opened("key-2", ORGANIZATION):
                pass
        monkeypatch.setattr(store, "transaction", store_down)  # the stream ends meanwhile
    monkeypatch.undo()
    assert streams.open == 0
    async with streams.opened("key-2", ORGANIZATION):  # the kept row went first
        with pytest.raises(RateLimited):
            async with streams.opened("key-3", ORGANIZATION):
                pass
    async with streams.opened("key-3", ORGANIZATION):  # and this one's went at its end
        pass
