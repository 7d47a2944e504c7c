"""The version of a saved assistant a call runs when the assistant's traffic is split between
versions (``Assistant.traffic_split``, set by ``PUT /assistants/{id}/traffic-split``)."""

from __future__ import annotations

from collections.abc import Sequence

from voicedock.domain.records import Assistant
from voicedock.domain.traffic_split import TrafficShare, version_for
from voicedock.store.base import Store


async def split_version(
    store: Store,
    saved: Assistant,
    party: str | None,
    shares: Sequence[TrafficShare] | None = None,
) -> Assistant:
    """``saved`` as the version its split (``shares``: a number's instead) gives ``party``
    (its settings and number); itself without a split or a party (a campaign, a test run), or
    when the split gives its current version. A version the split names that is gone (never:
    versions are kept while the assistant is) leaves the current one."""
    split = shares or saved.traffic_split
    if not split or party is None:
        return saved
    number = version_for(split, saved.id, party)
    if number == saved.version:
        return saved
    version = await store.get_assistant_version(saved.organization_id, saved.id, number)
    if version is None:
        return saved
    return version.restored(saved)
