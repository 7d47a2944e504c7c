"""The queries of dial admission (``calls/outbound/dial_pacing.py``), whose locks hold until
the transaction ends, so nodes sharing the database take turns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from voicedock.domain.records import Trunk


class DialWrites(Protocol):
    async def trunk_for_update(self, trunk: str) -> Trunk | None:
        """The trunk, its row locked: admissions on it take turns across nodes."""
        ...

    async def lock_organization(self, organization_id: str) -> None:
        """Lock the organization's row: admissions counting its calls take turns."""
        ...

    async def count_active_calls(
        self, by: Literal["trunk", "organization_id", "campaign_id"], value: str
    ) -> int:
        """The calls not yet ended whose ``by`` is ``value``."""
        ...

    async def trunk_dials(
        self, trunk: str, admitted_after: datetime, done_after: datetime
    ) -> list[datetime | None]:
        """When the PBX had the channel of each dial on ``trunk`` admitted after
        ``admitted_after`` and not done by ``done_after`` (``None``: its originate is still on
        its way)."""
        ...

    async def record_trunk_dial(self, trunk: str, now: datetime, forget_before: datetime) -> int:
        """Log a dial admitted on ``trunk`` at ``now`` (forgetting those before
        ``forget_before``): its id for ``dial_done``."""
        ...

    async def dial_done(self, dial_id: int, now: datetime) -> None:
        """The PBX answered the dial's originate (its channel exists, or never will)."""
        ...


__all__ = ["DialWrites"]
