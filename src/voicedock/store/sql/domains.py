"""Domains and organizations' branding in SQL (both backends)."""

from __future__ import annotations

from voicedock.domain.domains import Branding, Domain
from voicedock.store.pages import OldestFirstQuery, RecordPage
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.rows import BRANDING, DOMAINS


class SqlDomainWrites(TransactionPart):
    """Domains inside an open transaction."""

    async def insert_domain(self, domain: Domain) -> None:
        await self._insert(DOMAINS, domain)

    async def update_domain(self, domain: Domain) -> None:
        await self._update(DOMAINS, domain, ("status", "verified_at"), "domain")

    async def delete_domain(self, organization_id: str, domain_id: str) -> bool:
        return await self._delete(DOMAINS, organization_id, domain_id)

    async def set_branding(self, branding: Branding) -> None:
        await self._conn.execute(
            "DELETE FROM organization_branding WHERE organization_id = ?",
            branding.organization_id,
        )
        await self._insert(BRANDING, branding)


class SqlDomainReads(StorePart):
    """Domain and branding lookups."""

    async def get_domain(self, organization_id: str, domain_id: str) -> Domain | None:
        return await self._by_id(DOMAINS, organization_id, domain_id)

    async def list_domains(self, query: OldestFirstQuery) -> RecordPage[Domain]:
        return await self._oldest_first(DOMAINS, query)

    async def find_domain_by_host(self, host: str) -> Domain | None:
        return await self._by_key(DOMAINS, "host", host)

    async def get_branding(self, organization_id: str) -> Branding | None:
        return await self._by_key(BRANDING, "organization_id", organization_id)


__all__ = ["SqlDomainReads", "SqlDomainWrites"]
