"""Provider keys (sealed, ``domain/key_box.py``) in SQL (both backends)."""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from voicedock.domain.records import ProviderKey
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.rows import PROVIDER_KEYS


class SqlProviderKeyWrites(TransactionPart):
    """Provider keys inside an open transaction."""

    async def insert_provider_key(self, key: ProviderKey) -> None:
        await self._insert(PROVIDER_KEYS, key)

    async def update_provider_key(self, key: ProviderKey) -> None:
        await self._touched(PROVIDER_KEYS, key, ("sealed", "last4"), "provider key")

    async def delete_provider_key(self, organization_id: str, key_id: str) -> bool:
        return await self._delete(PROVIDER_KEYS, organization_id, key_id)


class SqlProviderKeyReads(StorePart):
    """Provider key lookups."""

    async def get_provider_key(
        self, organization_id: str, key_id: str | None = None, *, name: str | None = None
    ) -> ProviderKey | None:
        column, value = ("id", key_id) if name is None else ("name", name)
        row = await self._reader.fetchrow(
            f"SELECT * FROM provider_keys WHERE {column} = ? AND organization_id = ?",
            value,
            organization_id,
        )
        return None if row is None else PROVIDER_KEYS.decode(row, self._dialect)

    async def list_provider_keys(self, organization_id: str) -> list[ProviderKey]:
        return await self._of_organization(PROVIDER_KEYS, organization_id)


__all__ = ["SqlProviderKeyReads", "SqlProviderKeyWrites"]
