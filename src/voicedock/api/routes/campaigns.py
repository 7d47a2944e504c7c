"""``/campaigns`` (create, list, detail with progress, contacts, pause, resume, cancel;
docs/campaigns.md). The do-not-call list its contacts pass is ``do_not_call.py``'s."""

from __future__ import annotations

from aiohttp import web

from voicedock.api.app_keys import SERVICE
from voicedock.api.authentication import organization_of
from voicedock.api.body import read_body, read_json
from voicedock.api.models.base import parse, parse_query, reply
from voicedock.api.models.campaigns import Campaign as CampaignReply
from voicedock.api.models.campaigns import CampaignContact as ContactReply
from voicedock.api.models.campaigns import (
    CampaignContactsAdd,
    CampaignCreate,
    CampaignListQuery,
    ContactListQuery,
    ContactsAdded,
    contacts_of,
    csv_contacts,
)
from voicedock.api.resources import (
    Caller,
    Create,
    Listed,
    Page,
    Paged,
    Reply,
    Resource,
    mount,
)
from voicedock.calls.campaigns.manager import CAMPAIGN_NOT_FOUND
from voicedock.calls.campaigns.request import CampaignRequest
from voicedock.domain.campaigns import Campaign, CampaignContact, CampaignProgress, ContactState
from voicedock.errors import BadRequest, PayloadTooLarge

routes = web.RouteTableDef()

# Contacts (JSON or CSV) may take more than an ordinary request body.
MAX_CONTACTS_BYTES = 8 * 1024 * 1024


def parse_campaign(_caller: Caller, body: object) -> CampaignRequest:
    return parse(body, CampaignCreate).request()


async def _create(caller: Caller, request: CampaignRequest) -> tuple[Campaign, CampaignProgress]:
    service = caller.service
    campaign = await service.campaigns.create(caller.organization_id, request)
    service.dialer.wake()
    return campaign, await service.store.campaign_progress(campaign.id)


async def _detail(caller: Caller, campaign: Campaign) -> CampaignReply:
    return CampaignReply.of(campaign, await caller.service.store.campaign_progress(campaign.id))


async def _list(caller: Caller, page: Page) -> Listed[Campaign]:
    org_id = caller.organization_id
    return Listed(*await caller.store.list_campaigns(org_id, page.limit, page.offset))


CAMPAIGNS: Resource[Campaign] = Resource(
    path="/campaigns",
    noun="campaign",
    lookup=lambda c, campaign_id: c.store.get_campaign(c.organization_id, campaign_id),
    serialize=CampaignReply.of,
    list=Paged(run=_list, check=lambda q: parse_query(q, CampaignListQuery)),
    detail=_detail,
    create=Create(
        parse=parse_campaign,
        run=_create,
        reply=lambda _request, made: Reply(CampaignReply.of(*made), status=201),
        # A campaign's contacts may take more than an ordinary request body.
        max_body=MAX_CONTACTS_BYTES,
    ),
)


async def _list_contacts(caller: Caller, page: Page) -> Listed[CampaignContact]:
    state_name = page.query.get("state")
    states = {s.value for s in ContactState}
    if state_name is not None and state_name not in states:
        raise BadRequest(f"state must be one of: {', '.join(sorted(states))}")
    campaign = await CAMPAIGNS.find(caller, page.path["id"])
    state = None if state_name is None else ContactState(state_name)
    store = caller.store
    return Listed(*await store.list_campaign_contacts(campaign.id, state, page.limit, page.offset))


# A campaign's contacts: a list of its own (the campaign's 404 when it is not the caller's).
CONTACTS: Resource[CampaignContact] = Resource(
    path="/campaigns/{id}/contacts",
    noun="contact",
    title=CAMPAIGN_NOT_FOUND,  # its one 404: its campaign's
    get=False,
    serialize=ContactReply.of,
    list=Paged(
        run=_list_contacts,
        params=frozenset({"state"}),
        check=lambda q: parse_query(q, ContactListQuery),
    ),
)
mount(routes, CAMPAIGNS, CONTACTS)


@routes.post("/campaigns/{id}/contacts")
async def add_contacts(request: web.Request) -> web.Response:
    """More contacts: ``{"contacts": [...]}`` as JSON, or a CSV body (``text/csv``)."""
    service = request.app[SERVICE]
    campaign_id = CAMPAIGNS.path_id(request)
    if request.content_type == "text/csv":
        if request.content_length is not None and request.content_length > MAX_CONTACTS_BYTES:
            raise PayloadTooLarge(f"a CSV of contacts is at most {MAX_CONTACTS_BYTES} bytes")
        raw = await read_body(request, MAX_CONTACTS_BYTES)
        try:
            contacts = csv_contacts(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise BadRequest("the CSV must be UTF-8") from None
    else:
        body = await read_json(request, MAX_CONTACTS_BYTES)
        contacts = contacts_of(parse(body, CampaignContactsAdd).contacts)
    added = await service.campaigns.add_contacts(organization_of(request), campaign_id, contacts)
    service.dialer.wake()
    return reply(ContactsAdded(success=True, added=added), 201)


async def _move(request: web.Request, action: str) -> web.Response:
    service = request.app[SERVICE]
    org_id, campaign_id = organization_of(request), CAMPAIGNS.path_id(request)
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


RESOURCES = (CAMPAIGNS, CONTACTS)
