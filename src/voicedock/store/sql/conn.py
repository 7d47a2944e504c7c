"""The database session both backends hand to the shared SQL, and the values it carries."""

from __future__ import annotations

from collections.abc import Sized
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeAlias

# What a statement binds and a row holds: text (SQLite's timestamps and both dialects' JSON
# documents), numbers (PostgreSQL's SUM of integers is a Decimal), booleans, bytes, PostgreSQL's
# timestamptz, NULL.
SqlValue: TypeAlias = str | int | float | Decimal | bool | bytes | datetime | None
Row: TypeAlias = dict[str, SqlValue]


class Conn(Protocol):
    """One database session; driver errors arrive already translated to ``StoreError``.
    Statements use ``?`` placeholders."""

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]: ...
    async def fetchrow(self, sql: str, *args: SqlValue) -> Row | None: ...
    async def execute(self, sql: str, *args: SqlValue) -> int:
        """Run a statement; return the number of rows it changed."""
        ...


def marks(values: Sized) -> str:
    """The ``?`` placeholders of an ``IN (...)`` list of ``values``: ``?, ?, ?``."""
    return ", ".join("?" * len(values))


__all__ = ["Conn", "Row", "SqlValue", "marks"]
