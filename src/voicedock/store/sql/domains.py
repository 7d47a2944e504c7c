"""Domains and organizations' branding in SQL (both backends)."""

from __future__ import annotations

from datetime import datetime

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

    async def delete_domain_proposals(self, host: str, except_organization_id: str) -> int:
        """Delete the pending domains with this host of every organization but one."""
        return await self._conn.execute(
            "DELETE FROM organization_domains WHERE host = ? AND status = 'pending'"
            " AND organization_id <> ?",
            host,
            except_organization_id,
        )

    async def delete_domain_proposals_before(self, cutoff: datetime) -> int:
        """Delete the pending domains (of every organization) proposed before ``cutoff``."""
        return await self._conn.execute(
            "DELETE FROM organization_domains WHERE status = 'pending' AND created_at < ?",
            self._dialect.dt(cutoff),
        )

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

    async def find_verified_domain(self, host: str) -> Domain | None:
        return await self._one(
            DOMAINS,
            "SELECT * FROM organization_domains WHERE host = ? AND status = 'verified'",
            [host],
            locked=False,
        )

    async def get_domain_by_host(self, organization_id: str, host: str) -> Domain | None:
        return await self._one(
            DOMAINS,
            "SELECT * FROM organization_domains WHERE organization_id = ? AND host = ?",
            [organization_id, host],
            locked=False,
        )

    async def get_branding(self, organization_id: str) -> Branding | None:
        return await self._by_key(BRANDING, "organization_id", organization_id)


__all__ = ["SqlDomainReads", "SqlDomainWrites"]
