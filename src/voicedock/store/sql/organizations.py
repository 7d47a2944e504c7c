"""Organizations, their API keys and web console sessions in SQL (both backends)."""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime

from voicedock.domain.records import ApiKey, ConsoleSession, Organization
from voicedock.errors import StoreError
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.rows import API_KEYS, CONSOLE_SESSIONS, ORGANIZATIONS


class SqlOrganizationWrites(TransactionPart):
    """Organizations, API keys and console sessions inside an open transaction."""

    async def get_organization(self, organization_id: str) -> Organization | None:
        """The organization as this transaction sees it (its limits, read while placing)."""
        return await self._by_id(ORGANIZATIONS, None, organization_id)

    async def insert_organization(self, org: Organization) -> None:
        await self._insert(ORGANIZATIONS, org)

    async def update_organization(self, org: Organization) -> None:
        """Write what changes after creation: the display name, the assistant defaults, the
        operator's limits, its calling hours, whether its calls disclose the AI, its
        vocabulary and its own embeddings endpoint."""
        columns = (
            "display_name",
            "assistant_defaults",
            "max_concurrent_calls",
            "max_scheduled_calls",
            "ai_disclosure_required",
            "calling_hours",
            "vocabulary",
            "knowledge_embeddings",
        )
        changed = await self._conn.execute(
            f"UPDATE organizations SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
            *ORGANIZATIONS.encode(org, self._dialect, columns),
            org.id,
        )
        if changed != 1:
            raise StoreError("organization to update does not exist")

    async def insert_api_key(self, key: ApiKey) -> None:
        await self._insert(API_KEYS, key)

    async def update_api_key(self, key: ApiKey) -> None:
        """Write the fields that change after issue: the name, the revocation time and the
        listen grant."""
        await self._update(API_KEYS, key, ("name", "revoked_at", "listen"), "API key")

    async def insert_console_session(self, session: ConsoleSession) -> None:
        await self._insert(CONSOLE_SESSIONS, session)

    async def delete_console_session(self, token_hash: str) -> None:
        await self._conn.execute("DELETE FROM console_sessions WHERE token_hash = ?", token_hash)

    async def purge_console_sessions(self, now: datetime) -> None:
        """Forget sessions that expired before ``now``."""
        await self._conn.execute(
            "DELETE FROM console_sessions WHERE expires_at < ?", self._dialect.dt(now)
        )


class SqlOrganizationReads(StorePart):
    """Organization, API key and console session lookups."""

    async def get_organization(self, organization_id: str) -> Organization | None:
        return await self._by_id(ORGANIZATIONS, None, organization_id)

    async def get_organization_by_name(self, name: str) -> Organization | None:
        return await self._by_key(ORGANIZATIONS, "name", name)

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not (the caller checks ``revoked_at``)."""
        return await self._by_key(API_KEYS, "key_hash", key_hash)

    async def get_api_key(self, organization_id: str | None, key_id: str) -> ApiKey | None:
        """The key with this id (revoked or not); ``organization_id`` None: any organization."""
        return await self._by_id(API_KEYS, organization_id, key_id)

    async def list_api_keys(self, organization_id: str) -> list[ApiKey]:
        return await self._of_organization(API_KEYS, organization_id)

    async def find_console_session(self, token_hash: str) -> ConsoleSession | None:
        """The session with this hash, expired or not (the caller checks ``expires_at``)."""
        return await self._by_key(CONSOLE_SESSIONS, "token_hash", token_hash)


__all__ = ["SqlOrganizationReads", "SqlOrganizationWrites"]
