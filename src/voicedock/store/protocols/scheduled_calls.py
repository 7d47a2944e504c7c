"""Calls waiting for their ``scheduled_at``: claimed by one node when due, counted per
organization against its limit."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from voicedock.domain.records import Call


@dataclass(frozen=True, slots=True)
class ScheduledWaiting:
    """An organization's calls waiting with ``scheduled_at`` (not dialed, not ended)."""

    count: int
    first_due: datetime | None  # the earliest ``scheduled_at`` among them (None: none waits)


@dataclass(frozen=True, slots=True)
class ScheduledChoice:
    """Which due scheduled calls a claim may take: the organization's (``None``: any
    organization's), but those in ``skip`` (held back this round)."""

    organization_id: str | None = None
    skip: Collection[str] = ()


class ScheduledCallWrites(Protocol):
    async def claim_scheduled_call(
        self, node_id: str, now: datetime, choice: ScheduledChoice
    ) -> Call | None:
        """The chosen scheduled call due first at ``now``, locked and owned by ``node_id``."""
        ...

    async def scheduled_waiting(self, organization_id: str) -> ScheduledWaiting:
        """The organization's calls waiting with ``scheduled_at`` (lock the organization
        first to count them for a new one)."""
        ...


class ScheduledCallReads(Protocol):
    async def scheduled_due_organizations(self, now: datetime) -> list[str]:
        """The organizations with a scheduled call due at ``now``, the one whose call is due
        first first (the dialer takes them in turn)."""
        ...


__all__ = ["ScheduledCallReads", "ScheduledCallWrites", "ScheduledChoice", "ScheduledWaiting"]
