"""Do-not-call lists in SQL (both backends): ``do_not_call`` holds each organization's entries,
``operator_do_not_call`` the operator's (numbers and ``+digits*`` ranges, as
``domain/do_not_call.py`` writes them).

A number is looked up by the entries that would list it (``covering``: itself and each of its
prefixes as a range), at most 16 keys of each table's primary key: no pattern matching, no
scan of the list."""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from voicedock.domain.do_not_call import covering
from voicedock.store.sql.base import RowReads, StorePart, TransactionPart
from voicedock.store.sql.rows import integer


class _Lookups(RowReads):
    async def is_do_not_call(self, organization_id: str, number: str) -> bool:
        keys = covering(number)
        marks = ", ".join("?" for _ in keys)
        row = await self._reads().fetchrow(
            f"SELECT 1 AS hit FROM do_not_call WHERE organization_id = ? AND number IN ({marks})"
            f" UNION ALL SELECT 1 AS hit FROM operator_do_not_call WHERE entry IN ({marks})"
            " LIMIT 1",
            organization_id,
            *keys,
            *keys,
        )
        return row is not None


class SqlDoNotCallWrites(_Lookups, TransactionPart):
    """Do-not-call writes inside an open transaction."""

    async def add_do_not_call(
        self, organization_id: str, entries: Sequence[str], now: datetime
    ) -> int:
        added = 0
        for entry in entries:
            added += await self._conn.execute(
                "INSERT INTO do_not_call (organization_id, number, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (organization_id, number) DO NOTHING",
                organization_id,
                entry,
                self._dialect.dt(now),
            )
        return added

    async def delete_do_not_call(self, organization_id: str, entry: str) -> bool:
        changed = await self._conn.execute(
            "DELETE FROM do_not_call WHERE organization_id = ? AND number = ?",
            organization_id,
            entry,
        )
        return changed > 0

    async def count_do_not_call(self, organization_id: str) -> int:
        row = await self._conn.fetchrow(
            "SELECT count(*) AS n FROM do_not_call WHERE organization_id = ?", organization_id
        )
        return 0 if row is None else integer(row["n"])

    async def add_operator_do_not_call(self, entries: Sequence[str], now: datetime) -> int:
        added = 0
        for entry in entries:
            added += await self._conn.execute(
                "INSERT INTO operator_do_not_call (entry, created_at) VALUES (?, ?)"
                " ON CONFLICT (entry) DO NOTHING",
                entry,
                self._dialect.dt(now),
            )
        return added

    async def delete_operator_do_not_call(self, entry: str) -> bool:
        changed = await self._conn.execute(
            "DELETE FROM operator_do_not_call WHERE entry = ?", entry
        )
        return changed > 0


class SqlDoNotCallReads(_Lookups, StorePart):
    """Do-not-call lookups."""

    async def list_do_not_call(self, organization_id: str) -> list[str]:
        rows = await self._reader.fetch(
            "SELECT number FROM do_not_call WHERE organization_id = ? ORDER BY number",
            organization_id,
        )
        return [str(r["number"]) for r in rows]

    async def list_operator_do_not_call(self) -> list[str]:
        rows = await self._reader.fetch("SELECT entry FROM operator_do_not_call ORDER BY entry")
        return [str(r["entry"]) for r in rows]


__all__ = ["SqlDoNotCallReads", "SqlDoNotCallWrites"]
