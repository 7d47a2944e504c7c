"""Versions of squads and tool templates in SQL (both backends): one table for both kinds,
``record_versions``, written with the record (``SqlVersionedWrites``: its first version, its
next one under the record's row lock, its versions deleted with it) and read by kind."""

from __future__ import annotations

from voicedock.domain.record_versions import RecordVersion, Versioned, VersionedKind, kind_of
from voicedock.store.errors import StoreError
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.rows import RECORD_VERSIONS, Table, integer


class SqlVersionedWrites(TransactionPart):
    """A versioned record's writes: each makes a version of it (``by``: the API key that made
    the change; None: the operator)."""

    async def _insert_versioned(
        self, table: Table[Versioned], record: Versioned, by: str | None
    ) -> None:
        """The new record and its version 1."""
        record.version = 1
        await self._insert(table, record)
        await self._insert(RECORD_VERSIONS, RecordVersion.of(record, by))

    async def _update_versioned(
        self,
        table: Table[Versioned],
        record: Versioned,
        columns: tuple[str, ...],
        what: str,
        by: str | None,
    ) -> None:
        """Write ``columns`` as the record's next version (its row locked, so that two changes
        at once are two versions); ``updated_at`` and ``version`` are set on ``record`` too."""
        current = await self._by_id(table, record.organization_id, record.id, locked=True)
        if current is None:
            raise StoreError(f"{what} to update does not exist")
        row = await self._conn.fetchrow(
            "SELECT max(version) AS n FROM record_versions WHERE kind = ? AND record_id = ?",
            str(kind_of(record)),
            record.id,
        )
        latest = None if row is None or row["n"] is None else integer(row["n"])
        record.version = max(current.version, latest or 0) + 1
        await self._touched(table, record, (*columns, "version"), what)
        await self._insert(RECORD_VERSIONS, RecordVersion.of(record, by))

    async def _delete_versioned(
        self, table: Table[Versioned], kind: VersionedKind, organization_id: str, record_id: str
    ) -> bool:
        """Delete the record and its versions; whether there was one."""
        if not await self._delete(table, organization_id, record_id):
            return False
        await self._conn.execute(
            "DELETE FROM record_versions WHERE kind = ? AND record_id = ? AND organization_id = ?",
            str(kind),
            record_id,
            organization_id,
        )
        return True


class SqlRecordVersionReads(StorePart):
    """A squad's or a tool template's versions."""

    async def list_record_versions(
        self, kind: VersionedKind, organization_id: str, record_id: str
    ) -> list[RecordVersion]:
        rows = await self._reader.fetch(
            "SELECT * FROM record_versions"
            " WHERE kind = ? AND record_id = ? AND organization_id = ? ORDER BY version DESC",
            str(kind),
            record_id,
            organization_id,
        )
        return [RECORD_VERSIONS.decode(r, self._dialect) for r in rows]

    async def get_record_version(
        self, kind: VersionedKind, organization_id: str, record_id: str, version: int
    ) -> RecordVersion | None:
        row = await self._reader.fetchrow(
            "SELECT * FROM record_versions"
            " WHERE kind = ? AND record_id = ? AND organization_id = ? AND version = ?",
            str(kind),
            record_id,
            organization_id,
            version,
        )
        return None if row is None else RECORD_VERSIONS.decode(row, self._dialect)


__all__ = ["SqlRecordVersionReads", "SqlVersionedWrites"]
