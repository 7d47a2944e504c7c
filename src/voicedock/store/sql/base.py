"""What each concept's SQL stands on: ``TransactionPart`` (its statements inside an open
transaction, a part of ``SqlTransaction``) and ``StorePart`` (its reads outside any write, a
part of ``SqlReads``, which each backend's store is)."""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from voicedock.domain.records import utcnow
from voicedock.errors import StoreError
from voicedock.store.pages import OldestFirstQuery, RecordPage
from voicedock.store.sql.conn import Conn, SqlValue
from voicedock.store.sql.locks import Locks
from voicedock.store.sql.rows import Dialect, Record, Table, integer

if TYPE_CHECKING:
    from voicedock.store.protocols.calls import CallCursor, TimeRange

T = TypeVar("T", bound=Record)


class _OwnedRecord(Record, Protocol):
    """A record an organization owns, updated by its id."""

    @property
    def id(self) -> str: ...
    @property
    def organization_id(self) -> str: ...


R = TypeVar("R", bound=_OwnedRecord)


class _StampedRecord(_OwnedRecord, Protocol):
    """An owned record that says when it last changed."""

    updated_at: datetime


S = TypeVar("S", bound=_StampedRecord)


class RowReads:
    """Rows read by id or organization, on the part's connection for reads."""

    _dialect: Dialect

    def _reads(self) -> Conn:
        raise NotImplementedError

    async def _by_id(
        self, table: Table[T], organization_id: str | None, record_id: str, *, locked: bool = False
    ) -> T | None:
        """The row of ``table`` with this id (of the organization; ``None``: of any);
        ``locked``: until the transaction ends, where the backend locks rows."""
        sql = f"SELECT * FROM {table.name} WHERE id = ?"
        args: list[SqlValue] = [record_id]
        if organization_id is not None:
            sql += " AND organization_id = ?"
            args.append(organization_id)
        return await self._one(table, sql, args, locked)

    async def _by_key(
        self, table: Table[T], column: str, value: str, *, locked: bool = False
    ) -> T | None:
        """The row of ``table`` whose ``column``, a unique key, is ``value`` (``locked``: as
        ``_by_id``)."""
        sql = f"SELECT * FROM {table.name} WHERE {column} = ?"
        return await self._one(table, sql, [value], locked)

    async def _one(self, table: Table[T], sql: str, args: list[SqlValue], locked: bool) -> T | None:
        lock = self._dialect.lock_suffix if locked else ""
        row = await self._reads().fetchrow(sql + lock, *args)
        return None if row is None else table.decode(row, self._dialect)

    async def _of_organization(
        self, table: Table[T], organization_id: str, **equal: SqlValue
    ) -> list[T]:
        """The organization's rows of ``table``, oldest first; with ``equal``, only those
        whose columns hold its values (``knowledge_base_id=...``)."""
        narrowed = "".join(f" AND {column} = ?" for column in equal)
        rows = await self._reads().fetch(
            f"SELECT * FROM {table.name} WHERE organization_id = ?{narrowed}"
            " ORDER BY created_at, id",
            organization_id,
            *equal.values(),
        )
        return [table.decode(r, self._dialect) for r in rows]


class TransactionPart(RowReads):
    """Statements on one connection that is inside an open database transaction (its reads
    too: a task holding a transaction reads in it, never on another connection)."""

    def __init__(self, conn: Conn, dialect: Dialect, locks: Locks) -> None:
        self._conn = conn
        self._dialect = dialect
        self._locks = locks

    def _reads(self) -> Conn:
        return self._conn

    async def _insert(self, table: Table[T], record: T) -> None:
        await self._conn.execute(
            table.insert_sql(), *table.encode(record, self._dialect, table.insert_columns)
        )

    async def _update(
        self, table: Table[R], record: R, columns: tuple[str, ...], what: str
    ) -> None:
        assignments = ", ".join(f"{c} = ?" for c in columns)
        changed = await self._conn.execute(
            f"UPDATE {table.name} SET {assignments} WHERE id = ? AND organization_id = ?",
            *table.encode(record, self._dialect, columns),
            record.id,
            record.organization_id,
        )
        if changed != 1:
            raise StoreError(f"{what} to update does not exist")

    async def _touched(
        self, table: Table[S], record: S, columns: tuple[str, ...], what: str
    ) -> None:
        """``_update`` of ``columns`` and ``updated_at``, set to now first (also on
        ``record``)."""
        record.updated_at = utcnow()
        await self._update(table, record, (*columns, "updated_at"), what)

    async def _delete(self, table: Table[T], organization_id: str, record_id: str) -> bool:
        """Delete the organization's row of ``table`` with this id; whether there was one."""
        changed = await self._conn.execute(
            f"DELETE FROM {table.name} WHERE id = ? AND organization_id = ?",
            record_id,
            organization_id,
        )
        return changed > 0


class StorePart(RowReads):
    """Reads on ``_reader``, outside any write (the backend's store sets both attributes)."""

    _reader: Conn

    def _reads(self) -> Conn:
        return self._reader

    def _created_within(
        self, where: list[str], args: list[SqlValue], created: TimeRange, *, inclusive: bool
    ) -> None:
        """Adds ``created``'s bounds on ``created_at`` to ``where`` and ``args``; ``inclusive``:
        a row created at a bound is in the range."""
        at = "=" if inclusive else ""
        for comparison, bound in ((">", created.start), ("<", created.end)):
            if bound is not None:
                where.append(f"created_at {comparison}{at} ?")
                args.append(self._dialect.dt(bound))

    async def _newest_first(
        self,
        table: Table[T],
        where: list[str],
        args: list[SqlValue],
        page: tuple[CallCursor | None, int, int],
    ) -> tuple[list[T], int]:
        """One page of ``table``'s rows matching ``where`` (ANDed, ``args`` bound), newest
        first by ``created_at`` then ``seq``, and how many rows match; ``page``: the cursor
        (only rows listed after it), the limit and the offset."""
        after, limit, offset = page
        filtered = " AND ".join(where) or "TRUE"
        total_row = await self._reader.fetchrow(
            f"SELECT count(*) AS n FROM {table.name} WHERE {filtered}", *args
        )
        if after is not None:  # keyset on the list's order: no duplicate, no gap
            filtered += " AND (created_at < ? OR (created_at = ? AND seq < ?))"
            at = self._dialect.dt(after.created_at)
            args = [*args, at, at, after.seq]
        rows = await self._reader.fetch(
            f"SELECT * FROM {table.name} WHERE {filtered} "
            "ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?",
            *args,
            max(limit, 0),
            max(offset, 0),
        )
        total = 0 if total_row is None else integer(total_row["n"])
        return [table.decode(r, self._dialect) for r in rows], total

    async def _oldest_first(self, table: Table[T], query: OldestFirstQuery) -> RecordPage[T]:
        """One page of the organization's rows of ``table``, oldest first by ``created_at``
        then ``id`` (only rows listed after ``query.after``), and how many it has."""
        after, organization_id = query.after, query.organization_id
        where = "organization_id = ?"
        args: list[SqlValue] = [organization_id]
        total_row = await self._reader.fetchrow(
            f"SELECT count(*) AS n FROM {table.name} WHERE {where}", *args
        )
        if after is not None:  # keyset on the list's order: no duplicate, no gap
            last = f"(SELECT created_at FROM {table.name} WHERE id = ? AND organization_id = ?)"
            where += f" AND (created_at > {last} OR (created_at = {last} AND id > ?))"
            args += [after, organization_id] * 2 + [after]
        rows = await self._reader.fetch(
            f"SELECT * FROM {table.name} WHERE {where} ORDER BY created_at, id LIMIT ? OFFSET ?",
            *args,
            max(query.limit, 0),
            max(query.offset, 0),
        )
        total = 0 if total_row is None else integer(total_row["n"])
        return RecordPage([table.decode(r, self._dialect) for r in rows], total)


__all__ = ["RowReads", "StorePart", "TransactionPart"]
