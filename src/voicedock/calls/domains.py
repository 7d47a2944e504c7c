"""Organizations' domains and branding as the operator and the organizations manage them.

The operator (``voicedock organizations domains``, ``set-branding``) adds a domain to an
organization (verified at once: the operator vouches for it), lists, verifies and removes
them, and sets the branding its console domains show. Where ``[domains] tenant_proposals``
allows it, an organization's key proposes a domain (``POST /domains``), pending until its TXT
record is seen (``calls/domain_verification.py``) or the operator verifies it. A host is held
by one organization at most, whoever added it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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


async def insert_new_domain(
    store: Store, domain: Domain, record: Callable[[Transaction, str], Awaitable[None]]
) -> None:
    """Insert ``domain`` with what ``record`` writes (its audit event) in one transaction,
    unless its organization has as many as it may or another domain holds its host
    (``DomainRefused``, a conflict)."""
    page = await store.list_domains(OldestFirstQuery(domain.organization_id, limit=1))
    if page.total >= MAX_DOMAINS_PER_ORGANIZATION:
        raise DomainRefused(f"at most {MAX_DOMAINS_PER_ORGANIZATION} domains", conflict=True)
    try:
        async with store.transaction() as tx:
            await tx.insert_domain(domain)
            await record(tx, domain.id)
    except DuplicateKeyError:
        raise DomainRefused(f"{domain.host} is already a domain", conflict=True) from None


async def organization_named(store: Store, name: str) -> Organization:
    org = await store.get_organization_by_name(name)
    if org is None:
        raise DomainRefused(f"no organization named {name!r}")
    return org


async def domain_named(store: Store, org: Organization, host: str) -> Domain:
    """The organization's domain with this host (``DomainRefused`` when it has none)."""
    found = await store.find_domain_by_host(checked_host(host))
    if found is None or found.organization_id != org.id:
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
    domain = await store.find_domain_by_host(host)
    if (
        domain is None
        or domain.kind is not DomainKind.CONSOLE
        or domain.status is not DomainStatus.VERIFIED
    ):
        return None
    return HostOwner(domain.organization_id, host)


async def sip_domain_admits(store: Store, domain: str, organization_id: str) -> bool:
    """Whether an inbound call whose SIP Request-URI names ``domain`` (as the PBX passed it)
    may reach a number of ``organization_id``: unless the domain is another organization's
    verified sip domain, yes (a host that is no organization's, an address, "": as before)."""
    host = request_host(domain) if domain else None
    if host is None:
        return True
    found = await store.find_domain_by_host(host)
    if found is None or found.kind is not DomainKind.SIP:
        return True
    return found.status is not DomainStatus.VERIFIED or found.organization_id == organization_id


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
    "insert_new_domain",
    "list_all_domains",
    "new_domain",
    "organization_named",
    "sip_domain_admits",
    "verified",
]
