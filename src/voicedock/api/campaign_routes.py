"""``/campaigns`` (create, list, detail with progress, contacts, pause, resume, cancel) and the
organization's do-not-call list ``/do-not-call`` (docs/campaigns.md)."""

from __future__ import annotations

from aiohttp import web

from voicedock.api.body import MAX_OFFSET, query_int, read_body, read_json
from voicedock.api.keys import SERVICE
from voicedock.api.middleware import organization_of
from voicedock.api.models.base import parse, parse_query, reply
from voicedock.api.models.calls import Pagination
from voicedock.api.models.campaigns import Campaign as CampaignReply
from voicedock.api.models.campaigns import (
    CampaignContact,
    CampaignContactList,
    CampaignContactsAdd,
    CampaignCreate,
    CampaignList,
    CampaignListQuery,
    ContactListQuery,
    ContactsAdded,
    Done,
    DoNotCallAdded,
    DoNotCallList,
    DoNotCallNumber,
)
from voicedock.calls import fields
from voicedock.calls.campaigns.manager import CAMPAIGN_NOT_FOUND
from voicedock.calls.campaigns.request import (
    parse_campaign_request,
    parse_contacts,
    parse_contacts_csv,
)
from voicedock.domain.campaigns import Campaign, ContactState
from voicedock.domain.records import utcnow
from voicedock.errors import BadRequest, NotFound, PayloadTooLarge
from voicedock.validation import is_token, require_e164

routes = web.RouteTableDef()

# Contacts (JSON or CSV) may take more than an ordinary request body.
MAX_CONTACTS_BYTES = 8 * 1024 * 1024
_PAGE_PARAMS = frozenset({"limit", "offset"})


def _campaign_id(request: web.Request) -> str:
    value = request.match_info["id"]
    if not is_token(value):
        raise NotFound("no campaign with this id", error=CAMPAIGN_NOT_FOUND)
    return value


async def _campaign(request: web.Request) -> Campaign:
    found = await request.app[SERVICE].store.get_campaign(
        organization_of(request), _campaign_id(request)
    )
    if found is None:
        raise NotFound("no campaign with this id", error=CAMPAIGN_NOT_FOUND)
    return found


def _page(request: web.Request, extra: frozenset[str] = frozenset()) -> tuple[int, int]:
    q = request.query
    unknown = sorted(set(q) - _PAGE_PARAMS - extra)
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}")
    if any(len(q.getall(name)) > 1 for name in q):
        raise BadRequest("each query parameter may appear only once")
    parse_query(q, ContactListQuery if extra else CampaignListQuery)
    return (
        query_int(q.get("limit"), "limit", 100, 1, 1000),
        query_int(q.get("offset"), "offset", 0, 0, MAX_OFFSET),
    )


@routes.post("/campaigns")
async def create_campaign(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    # A campaign's contacts may take more than an ordinary request body.
    body = await read_json(request, max(service.settings.server.max_body_bytes, MAX_CONTACTS_BYTES))
    parsed = parse_campaign_request(body)  # what it means (calls/campaigns/request.py)
    parse(body, CampaignCreate)  # and nothing the document does not say
    campaign = await service.campaigns.create(organization_of(request), parsed)
    service.dialer.wake()
    progress = await service.store.campaign_progress(campaign.id)
    return reply(CampaignReply.of(campaign, progress), 201)


@routes.get("/campaigns")
async def list_campaigns(request: web.Request) -> web.Response:
    limit, offset = _page(request)
    store = request.app[SERVICE].store
    campaigns, total = await store.list_campaigns(organization_of(request), limit, offset)
    return reply(
        CampaignList(
            campaigns=[CampaignReply.of(c) for c in campaigns],
            pagination=Pagination(total=total, limit=limit, offset=offset),
        )
    )


@routes.get("/campaigns/{id}")
async def get_campaign(request: web.Request) -> web.Response:
    campaign = await _campaign(request)
    progress = await request.app[SERVICE].store.campaign_progress(campaign.id)
    return reply(CampaignReply.of(campaign, progress))


@routes.get("/campaigns/{id}/contacts")
async def list_contacts(request: web.Request) -> web.Response:
    limit, offset = _page(request, frozenset({"state"}))
    state_name = request.query.get("state")
    states = {s.value for s in ContactState}
    if state_name is not None and state_name not in states:
        raise BadRequest(f"state must be one of: {', '.join(sorted(states))}")
    campaign = await _campaign(request)
    contacts, total = await request.app[SERVICE].store.list_campaign_contacts(
        campaign.id, None if state_name is None else ContactState(state_name), limit, offset
    )
    return reply(
        CampaignContactList(
            contacts=[CampaignContact.of(c) for c in contacts],
            pagination=Pagination(total=total, limit=limit, offset=offset),
        )
    )


@routes.post("/campaigns/{id}/contacts")
async def add_contacts(request: web.Request) -> web.Response:
    """More contacts: ``{"contacts": [...]}`` as JSON, or a CSV body (``text/csv``)."""
    service = request.app[SERVICE]
    campaign_id = _campaign_id(request)
    if request.content_type == "text/csv":
        if request.content_length is not None and request.content_length > MAX_CONTACTS_BYTES:
            raise PayloadTooLarge(f"a CSV of contacts is at most {MAX_CONTACTS_BYTES} bytes")
        raw = await read_body(request, MAX_CONTACTS_BYTES)
        try:
            contacts = parse_contacts_csv(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise BadRequest("the CSV must be UTF-8") from None
    else:
        body = await read_json(request, MAX_CONTACTS_BYTES)
        fields.reject_unknown(fields.require_object(body), ("contacts",))
        contacts = parse_contacts(body.get("contacts"))  # type: ignore[attr-defined]
        parse(body, CampaignContactsAdd)
    added = await service.campaigns.add_contacts(organization_of(request), campaign_id, contacts)
    service.dialer.wake()
    return reply(ContactsAdded(success=True, added=added), 201)


async def _move(request: web.Request, action: str) -> web.Response:
    service = request.app[SERVICE]
    org_id, campaign_id = organization_of(request), _campaign_id(request)
    manager = service.campaigns
    moves = {"pause": manager.pause, "resume": manager.resume, "cancel": manager.cancel}
    campaign = await moves[action](org_id, campaign_id)
    service.dialer.wake()
    progress = await service.store.campaign_progress(campaign.id)
    return reply(CampaignReply.of(campaign, progress))


@routes.post("/campaigns/{id}/pause")
async def pause_campaign(request: web.Request) -> web.Response:
    return await _move(request, "pause")


@routes.post("/campaigns/{id}/resume")
async def resume_campaign(request: web.Request) -> web.Response:
    return await _move(request, "resume")


@routes.post("/campaigns/{id}/cancel")
async def cancel_campaign(request: web.Request) -> web.Response:
    return await _move(request, "cancel")


# -- do-not-call ------------------------------------------------------------------------------


@routes.get("/do-not-call")
async def list_do_not_call(request: web.Request) -> web.Response:
    numbers = await request.app[SERVICE].store.list_do_not_call(organization_of(request))
    return reply(DoNotCallList(numbers=numbers))


@routes.post("/do-not-call")
async def add_do_not_call(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = await read_json(request, service.settings.server.max_body_bytes)
    fields.reject_unknown(fields.require_object(body), ("number",))
    number = require_e164(body.get("number"), "number")  # type: ignore[attr-defined]
    parse(body, DoNotCallNumber)
    async with service.store.transaction() as tx:
        await tx.add_do_not_call(organization_of(request), number, utcnow())
    return reply(DoNotCallAdded(success=True, number=number), 201)


@routes.delete("/do-not-call/{number}")
async def delete_do_not_call(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    number = request.match_info["number"]
    async with service.store.transaction() as tx:
        removed = await tx.delete_do_not_call(organization_of(request), number)
    if not removed:
        raise NotFound("the number is not on the do-not-call list")
    return reply(Done(success=True))
