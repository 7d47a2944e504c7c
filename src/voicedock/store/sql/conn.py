"""The database session both backends hand to the shared SQL."""

from __future__ import annotations

from typing import Any, Protocol


class Conn(Protocol):
    """One database session; driver errors arrive already translated to ``StoreError``.
    Statements use ``?`` placeholders."""

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...
    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None: ...
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; return the number of rows it changed."""
        ...


__all__ = ["Conn"]
