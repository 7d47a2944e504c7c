"""Domains (``/domains``): the host names each organization holds, and its console branding."""

from __future__ import annotations

from typing import Protocol

from voicedock.domain.domains import Branding, Domain
from voicedock.store.pages import OldestFirstQuery, RecordPage


class DomainWrites(Protocol):
    async def insert_domain(self, domain: Domain) -> None:
        """Insert; a host some organization already holds raises ``DuplicateKeyError``."""

    async def update_domain(self, domain: Domain) -> None: ...
    async def delete_domain(self, organization_id: str, domain_id: str) -> bool: ...
    async def set_branding(self, branding: Branding) -> None:
        """The organization's branding, replacing any it had."""


class DomainReads(Protocol):
    async def get_domain(self, organization_id: str, domain_id: str) -> Domain | None: ...
    async def list_domains(self, query: OldestFirstQuery) -> RecordPage[Domain]: ...
    async def find_domain_by_host(self, host: str) -> Domain | None:
        """The domain of any organization with this host (``normalize_host``'s form)."""

    async def get_branding(self, organization_id: str) -> Branding | None: ...


__all__ = ["DomainReads", "DomainWrites"]
