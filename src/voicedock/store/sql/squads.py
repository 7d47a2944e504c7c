"""Squads in SQL (both backends)."""

from __future__ import annotations

from voicedock.domain.records import Squad, utcnow
from voicedock.store.pages import OldestFirstQuery, RecordPage
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.rows import SQUADS


class SqlSquadWrites(TransactionPart):
    """Squads inside an open transaction."""

    async def insert_squad(self, squad: Squad) -> None:
        await self._insert(SQUADS, squad)

    async def update_squad(self, squad: Squad) -> None:
        squad.updated_at = utcnow()
        await self._update(SQUADS, squad, ("name", "members", "updated_at"), "squad")

    async def delete_squad(self, organization_id: str, squad_id: str) -> bool:
        return await self._delete(SQUADS, organization_id, squad_id)


class SqlSquadReads(StorePart):
    """Squad lookups."""

    async def get_squad(self, organization_id: str, squad_id: str) -> Squad | None:
        return await self._by_id(SQUADS, organization_id, squad_id)

    async def list_squads(self, query: OldestFirstQuery) -> RecordPage[Squad]:
        return await self._oldest_first(SQUADS, query)


__all__ = ["SqlSquadReads", "SqlSquadWrites"]
