"""An organization's own speech and LLM provider keys (BYOK), stored sealed
(``domain/key_box.py``) under names unique in the organization."""

from __future__ import annotations

from typing import Protocol

from voicedock.domain.records import ProviderKey


class ProviderKeyWrites(Protocol):
    async def insert_provider_key(self, key: ProviderKey) -> None:
        """StoreConflict when the organization has a key of that name."""
        ...

    async def update_provider_key(self, key: ProviderKey) -> None: ...
    async def delete_provider_key(self, organization_id: str, key_id: str) -> bool: ...


class ProviderKeyReads(Protocol):
    async def get_provider_key(
        self, organization_id: str, key_id: str | None = None, *, name: str | None = None
    ) -> ProviderKey | None:
        """By id, or by ``name`` (the organization's names are unique)."""
        ...

    async def list_provider_keys(self, organization_id: str) -> list[ProviderKey]: ...


__all__ = ["ProviderKeyReads", "ProviderKeyWrites"]
