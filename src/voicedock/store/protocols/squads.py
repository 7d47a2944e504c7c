"""Squads (``/squads``): an organization's assistants that hand a call over to each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from voicedock.domain.records import Squad


@dataclass(frozen=True, slots=True)
class SquadQuery:
    """A page of an organization's squads, oldest first; ``after``: the id of the squad the
    previous page ended with (the opaque cursor), only squads listed after it."""

    organization_id: str
    limit: int = 100
    offset: int = 0
    after: str | None = None


@dataclass(frozen=True, slots=True)
class SquadPage:
    squads: list[Squad]
    total: int  # the organization's squads


class SquadWrites(Protocol):
    async def insert_squad(self, squad: Squad) -> None: ...
    async def update_squad(self, squad: Squad) -> None: ...
    async def delete_squad(self, organization_id: str, squad_id: str) -> bool: ...


class SquadReads(Protocol):
    async def get_squad(self, organization_id: str, squad_id: str) -> Squad | None: ...
    async def list_squads(self, query: SquadQuery) -> SquadPage: ...


__all__ = ["SquadPage", "SquadQuery", "SquadReads", "SquadWrites"]
