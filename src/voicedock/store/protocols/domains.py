"""Domains (``/domains``): the host names each organization holds, and its console branding.

A host is verified for one organization at most; several may have it pending (proposed)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from voicedock.domain.domains import Branding, Domain
from voicedock.store.pages import OldestFirstQuery, RecordPage


class DomainWrites(Protocol):
    async def insert_domain(self, domain: Domain) -> None:
        """Insert; a host the organization has already, or a verified host another
        organization holds, raises ``DuplicateKeyError``."""

    async def update_domain(self, domain: Domain) -> None:
        """Its status and verification time; verified where another organization holds the
        host verified raises ``DuplicateKeyError``."""

    async def delete_domain(self, organization_id: str, domain_id: str) -> bool: ...
    async def delete_domain_proposals(self, host: str, except_organization_id: str) -> int:
        """Delete the pending domains with this host of every organization but one."""
        ...

    async def delete_domain_proposals_before(self, cutoff: datetime) -> int:
        """Delete the pending domains (of every organization) proposed before ``cutoff``."""
        ...

    async def set_branding(self, branding: Branding) -> None:
        """The organization's branding, replacing any it had."""


class DomainReads(Protocol):
    async def get_domain(self, organization_id: str, domain_id: str) -> Domain | None: ...
    async def list_domains(self, query: OldestFirstQuery) -> RecordPage[Domain]: ...
    async def find_verified_domain(self, host: str) -> Domain | None:
        """The verified domain with this host (``normalize_host``'s form), whose organization
        holds it; None while no organization verified it."""

    async def get_domain_by_host(self, organization_id: str, host: str) -> Domain | None:
        """The organization's domain with this host, pending or verified."""

    async def get_branding(self, organization_id: str) -> Branding | None: ...


__all__ = ["DomainReads", "DomainWrites"]
