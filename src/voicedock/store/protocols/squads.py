"""Squads (``/squads``): an organization's assistants that hand a call over to each other."""

from __future__ import annotations

from typing import Protocol

from voicedock.domain.records import Squad
from voicedock.store.pages import OldestFirstQuery, RecordPage


class SquadWrites(Protocol):
    # Each makes a version of the squad (``by``: the API key that made the change).
    async def insert_squad(self, squad: Squad, by: str | None = None) -> None: ...
    async def update_squad(self, squad: Squad, by: str | None = None) -> None: ...
    async def delete_squad(self, organization_id: str, squad_id: str) -> bool: ...


class SquadReads(Protocol):
    async def get_squad(self, organization_id: str, squad_id: str) -> Squad | None: ...
    async def list_squads(self, query: OldestFirstQuery) -> RecordPage[Squad]: ...


__all__ = ["SquadReads", "SquadWrites"]
