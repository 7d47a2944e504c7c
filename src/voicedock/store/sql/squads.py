"""Squads in SQL (both backends)."""

from __future__ import annotations

from voicedock.domain.record_versions import VersionedKind
from voicedock.domain.records import Squad
from voicedock.store.pages import OldestFirstQuery, RecordPage
from voicedock.store.sql.base import StorePart
from voicedock.store.sql.record_versions import SqlVersionedWrites
from voicedock.store.sql.rows import SQUADS


class SqlSquadWrites(SqlVersionedWrites):
    """Squads inside an open transaction, each change a version of the squad."""

    async def insert_squad(self, squad: Squad, by: str | None = None) -> None:
        await self._insert_versioned(SQUADS, squad, by)

    async def update_squad(self, squad: Squad, by: str | None = None) -> None:
        await self._update_versioned(SQUADS, squad, ("name", "members"), "squad", by)

    async def delete_squad(self, organization_id: str, squad_id: str) -> bool:
        return await self._delete_versioned(SQUADS, VersionedKind.SQUAD, organization_id, squad_id)


class SqlSquadReads(StorePart):
    """Squad lookups."""

    async def get_squad(self, organization_id: str, squad_id: str) -> Squad | None:
        return await self._by_id(SQUADS, organization_id, squad_id)

    async def list_squads(self, query: OldestFirstQuery) -> RecordPage[Squad]:
        return await self._oldest_first(SQUADS, query)


__all__ = ["SqlSquadReads", "SqlSquadWrites"]
