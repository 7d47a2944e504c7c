"""Organizations' domains and branding as the operator and the organizations manage them.

The operator (``voicedock organizations domains``, ``set-branding``) adds a domain to an
organization (verified at once: the operator vouches for it), lists, verifies and removes
them, and sets the branding its console domains show. Where ``[domains] tenant_proposals``
allows it, an organization's key proposes a domain (``POST /domains``), pending until its TXT
record is seen (``organizations/domain_verification.py``) or the operator verifies it.

A host is held (verified) by one organization at most. Several may propose one host: the
first to verify it holds it and the others' proposals are dropped; the operator's domain
(``domains add``) drops them too. A proposal not verified within ``[domains] pending_days`` is
dropped (``drop_expired_proposals``, run before domains are listed, read or added). No answer
to an organization names the organization that holds a host: it is "not available".
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from voicedock.domain.domains import (
    MAX_BRAND_NAME_CHARS,
    MAX_DOMAINS_PER_ORGANIZATION,
    MAX_LOGO_BYTES,
    Branding,
    Domain,
    DomainKind,
    DomainStatus,
    HostRefused,
    logo_type,
    normalize_host,
    request_host,
)
from voicedock.domain.records import Organization, utcnow
from voicedock.errors import VoicedockError
from voicedock.store.base import OldestFirstQuery, Store, Transaction
from voicedock.store.errors import DuplicateKeyError


class DomainRefused(VoicedockError):
    """The request on a domain cannot be done; the message says why (the API: 409 for a host
    held already or too many domains, 400 for a host that is none)."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


@dataclass(frozen=True, slots=True)
class HostOwner:
    """The organization a request's host is a verified console domain of."""

    organization_id: str
    host: str


def checked_host(text: str) -> str:
    """``text`` as a domain's host (``DomainRefused`` says why it is none)."""
    try:
        return normalize_host(text)
    except HostRefused as exc:
        raise DomainRefused(str(exc)) from None


def new_domain(organization_id: str, host: str, kind: DomainKind, *, verified: bool) -> Domain:
    """A domain of the organization as it is added: verified now (the operator's), or
    pending (an organization's proposal)."""
    now = utcnow()
    return Domain(
        id=str(uuid.uuid4()),
        organization_id=organization_id,
        host=checked_host(host),
        kind=kind,
        status=DomainStatus.VERIFIED if verified else DomainStatus.PENDING,
        created_at=now,
        verified_at=now if verified else None,
    )


Record = Callable[[Transaction, str], Awaitable[None]]


def not_available(host: str) -> DomainRefused:
    """What an organization is told of a host another organization holds (never which)."""
    return DomainRefused(f"{host} is not available", conflict=True)


async def insert_new_domain(store: Store, domain: Domain, record: Record) -> None:
    """Insert ``domain`` with what ``record`` writes (its audit event) in one transaction,
    unless its organization has as many as it may or the host already, or another
    organization holds it verified (``DomainRefused``, a conflict). A verified one (the
    operator's) drops the other organizations' proposals of its host."""
    org_id = domain.organization_id
    page = await store.list_domains(OldestFirstQuery(org_id, limit=1))
    if page.total >= MAX_DOMAINS_PER_ORGANIZATION:
        raise DomainRefused(f"at most {MAX_DOMAINS_PER_ORGANIZATION} domains", conflict=True)
    if await store.get_domain_by_host(org_id, domain.host) is not None:
        raise DomainRefused(f"{domain.host} is already a domain of yours", conflict=True)
    held = await store.find_verified_domain(domain.host)
    if held is not None and held.organization_id != org_id:
        raise not_available(domain.host)
    try:
        async with store.transaction() as tx:
            if domain.status is DomainStatus.VERIFIED:
                await tx.delete_domain_proposals(domain.host, org_id)
            await tx.insert_domain(domain)
            await record(tx, domain.id)
    except DuplicateKeyError:  # added meanwhile
        raise not_available(domain.host) from None


async def verify_domain(store: Store, domain: Domain, record: Record) -> Domain:
    """``domain`` verified, with what ``record`` writes, the other organizations' proposals of
    its host dropped; ``DomainRefused`` (a conflict) when another organization verified the
    host first. A verified domain is returned as it is."""
    if domain.status is DomainStatus.VERIFIED:
        return domain
    try:
        async with store.transaction() as tx:
            done = verified(domain)
            await tx.update_domain(done)
            await tx.delete_domain_proposals(done.host, done.organization_id)
            await record(tx, done.id)
    except DuplicateKeyError:
        domain.status, domain.verified_at = DomainStatus.PENDING, None
        raise not_available(domain.host) from None
    return done


async def drop_expired_proposals(store: Store, pending_days: int) -> int:
    """Delete the proposals (of every organization) older than ``pending_days``: they are no
    longer listed, counted or in the way of another organization's; how many went."""
    cutoff = utcnow() - timedelta(days=pending_days)
    async with store.transaction() as tx:
        return await tx.delete_domain_proposals_before(cutoff)


async def organization_named(store: Store, name: str) -> Organization:
    org = await store.get_organization_by_name(name)
    if org is None:
        raise DomainRefused(f"no organization named {name!r}")
    return org


async def domain_named(store: Store, org: Organization, host: str) -> Domain:
    """The organization's domain with this host (``DomainRefused`` when it has none)."""
    found = await store.get_domain_by_host(org.id, checked_host(host))
    if found is None:
        raise DomainRefused(f"{org.name!r} has no domain {host!r}")
    return found


async def list_all_domains(store: Store, organization_id: str) -> list[Domain]:
    """Every domain of the organization, oldest first."""
    query = OldestFirstQuery(organization_id, limit=MAX_DOMAINS_PER_ORGANIZATION)
    return (await store.list_domains(query)).records


def verified(domain: Domain) -> Domain:
    """``domain`` verified now (as it was, when it was already)."""
    if domain.status is DomainStatus.VERIFIED:
        return domain
    domain.status = DomainStatus.VERIFIED
    domain.verified_at = utcnow()
    return domain


def branding(organization_id: str, name: str, logo: bytes | None) -> Branding:
    """The branding an operator sets, checked: a name of at most ``MAX_BRAND_NAME_CHARS``
    printable characters, a logo of at most ``MAX_LOGO_BYTES`` that is a PNG, JPEG or GIF
    image (``DomainRefused`` says what is wrong)."""
    name = name.strip()
    if not name or len(name) > MAX_BRAND_NAME_CHARS or not name.isprintable():
        raise DomainRefused(f"the name is 1-{MAX_BRAND_NAME_CHARS} printable characters")
    kind = None
    if logo is not None:
        if len(logo) > MAX_LOGO_BYTES:
            raise DomainRefused(f"the logo is at most {MAX_LOGO_BYTES // 1024} KiB")
        kind = logo_type(logo)
        if kind is None:
            raise DomainRefused("the logo is a PNG, JPEG or GIF image")
    return Branding(organization_id=organization_id, name=name, logo=logo, logo_type=kind)


async def console_host_owner(store: Store, host: str | None) -> HostOwner | None:
    """The organization whose verified console domain ``host`` is (``request_host``'s
    form); None for any other host (the operator's console)."""
    if host is None:
        return None
    domain = await store.find_verified_domain(host)
    if domain is None or domain.kind is not DomainKind.CONSOLE:
        return None
    return HostOwner(domain.organization_id, host)


async def sip_domain_admits(store: Store, domain: str, organization_id: str) -> bool:
    """Whether an inbound call whose SIP Request-URI names ``domain`` (as the PBX passed it)
    may reach a number of ``organization_id``: unless the domain is another organization's
    verified sip domain, yes (a host that is no organization's, an address, "": as before)."""
    host = request_host(domain) if domain else None
    if host is None:
        return True
    found = await store.find_verified_domain(host)
    if found is None or found.kind is not DomainKind.SIP:
        return True
    return found.organization_id == organization_id


async def console_branding(store: Store, owner: HostOwner) -> Branding | None:
    """What the console shows on the owner's host: the operator's branding, else the
    organization's own display name without a logo."""
    shown = await store.get_branding(owner.organization_id)
    if shown is not None:
        return shown
    org = await store.get_organization(owner.organization_id)
    name = "" if org is None else org.display_name or org.name
    return Branding(organization_id=owner.organization_id, name=name) if name else None


__all__ = [
    "MAX_LOGO_BYTES",
    "DomainRefused",
    "HostOwner",
    "branding",
    "checked_host",
    "console_branding",
    "console_host_owner",
    "domain_named",
    "drop_expired_proposals",
    "insert_new_domain",
    "list_all_domains",
    "new_domain",
    "not_available",
    "organization_named",
    "sip_domain_admits",
    "verified",
    "verify_domain",
]
