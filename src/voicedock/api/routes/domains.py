"""``/domains`` (an organization's host names: list by cursor, get; propose, withdraw a
pending one and verify it where the operator allows it). What a domain is and how it is
checked are ``organizations/domains.py``'s; its DNS verification
``organizations/domain_verification.py``'s.
Proposals older than ``[domains] pending_days`` are dropped before any of these."""

from __future__ import annotations

from aiohttp import web
from msgspec import UnsetType

from voicedock.api.audit import Actor, Audited
from voicedock.api.models.base import parse, reply
from voicedock.api.models.domains import Domain as DomainReply
from voicedock.api.models.domains import DomainCreate, DomainListQuery
from voicedock.api.resources import (
    Caller,
    Create,
    Delete,
    Resource,
    caller_of,
    created,
    listed_oldest_first,
    mount,
)
from voicedock.domain.domains import Domain, DomainKind, DomainStatus, verification_name
from voicedock.errors import BadRequest, Conflict, Forbidden
from voicedock.organizations.domain_verification import txt_holds_token
from voicedock.organizations.domains import (
    DomainRefused,
    drop_expired_proposals,
    insert_new_domain,
    new_domain,
    verify_domain,
)
from voicedock.store.base import Transaction
from voicedock.store.pages import OldestFirstQuery, RecordPage

routes = web.RouteTableDef()


def _refusal(exc: DomainRefused) -> Conflict | BadRequest:
    """A host held already (never saying by whom) or too many domains: 409; a host that is
    no domain name: 400 ``Invalid domain`` (the schema cannot say what a DNS name is)."""
    return Conflict(str(exc)) if exc.conflict else BadRequest(str(exc), error="Invalid domain")


def _parse_new(caller: Caller, body: object) -> Domain:
    if not caller.service.settings.domains.tenant_proposals:
        raise Forbidden("domains are added by the operator")
    given = parse(body, DomainCreate)
    kind = DomainKind.CONSOLE if isinstance(given.kind, UnsetType) else given.kind
    try:
        return new_domain(caller.organization_id, given.host, kind, verified=False)
    except DomainRefused as exc:
        raise _refusal(exc) from None


async def _live(caller: Caller) -> None:
    """The proposals past ``[domains] pending_days`` dropped (they are no longer domains)."""
    await drop_expired_proposals(caller.store, caller.service.settings.domains.pending_days)


async def _lookup(caller: Caller, domain_id: str) -> Domain | None:
    await _live(caller)
    return await caller.store.get_domain(caller.organization_id, domain_id)


async def _page(caller: Caller, query: OldestFirstQuery) -> RecordPage[Domain]:
    await _live(caller)
    return await caller.store.list_domains(query)


async def _insert(caller: Caller, domain: Domain) -> Domain:
    await _live(caller)
    try:
        await insert_new_domain(caller.store, domain, caller.record)
    except DomainRefused as exc:
        raise _refusal(exc) from None
    return domain


async def _withdraw(caller: Caller, domain: Domain) -> Domain:
    if domain.status is not DomainStatus.PENDING:
        raise Forbidden("a verified domain is removed by the operator")
    async with caller.store.transaction() as tx:
        await tx.delete_domain(domain.organization_id, domain.id)
        await caller.record(tx, domain.id)
    return domain


DOMAINS: Resource[Domain] = Resource(
    path="/domains",
    noun="domain",
    lookup=_lookup,
    serialize=DomainReply.of,
    list=listed_oldest_first(_page, DomainListQuery),
    create=Create(parse=_parse_new, run=_insert, reply=created(DomainReply.of)),
    delete=Delete(run=_withdraw),
    audit=Audited("domain"),
)
RESOURCES = (DOMAINS,)
mount(routes, *RESOURCES)


@routes.post("/domains/{id}/verify")
async def verify_by_dns(request: web.Request) -> web.Response:
    """Look the domain's TXT record up (the operator's resolver) and verify it when it holds
    the domain's token: ``200`` with the domain; ``409`` while it does not, or when another
    organization verified the host first (it is not available; the others' proposals of a
    host are dropped when one organization verifies it)."""
    caller = caller_of(request)
    domain = await DOMAINS.fetch(request)
    settings = caller.service.settings.domains
    if domain.status is DomainStatus.VERIFIED:
        return reply(DomainReply.of(domain))
    if not settings.dns_verification:
        raise Forbidden("domains are verified by the operator")
    if not await txt_holds_token(settings, domain):
        raise Conflict(
            f"no TXT record {verification_name(domain.host)} holding the domain's token yet"
        )
    actor = Actor.of(request)

    async def record(tx: Transaction, domain_id: str) -> None:
        await tx.insert_audit_event(actor.event("domain.verified", "domain", domain_id))

    try:
        done = await verify_domain(caller.store, domain, record)
    except DomainRefused as exc:
        raise _refusal(exc) from None
    return reply(DomainReply.of(done))


__all__ = ["DOMAINS", "RESOURCES", "routes"]
