"""``/organization``: the API key's organization. Any key reads it; an admin key sets its
display name, the defaults of its new assistants and whether its calls disclose the AI (the
auth middleware refuses others),
whose provider keys are checked as an assistant's (``KeyRefs.check``: 403/422), and its own
embeddings endpoint, whose URL and provider key are checked as they are set
(``knowledge.endpoints.check_setting``: 400/403/422); its name and limits are the operator's
(403 ``Operator setting``)."""

from __future__ import annotations

import dataclasses

from aiohttp import web
from msgspec import UNSET

from voicedock.api.app_keys import SERVICE
from voicedock.api.authentication import organization_of
from voicedock.api.body import read_json
from voicedock.api.models.base import parse, reply, sent
from voicedock.api.models.organization import (
    AssistantDefaultsUpdate,
    Organization,
    OrganizationUpdate,
)
from voicedock.calls.assistants.defaults import check_defaults
from voicedock.calls.assistants.key_refs import KeyRefs
from voicedock.domain.campaigns import daily_window
from voicedock.domain.records import Organization as OrganizationRecord
from voicedock.domain.vocabulary import Vocabulary
from voicedock.errors import BadRequest, Forbidden, NotFound
from voicedock.knowledge.endpoints import check_setting
from voicedock.organizations.settings import limits_of

routes = web.RouteTableDef()


async def _organization(request: web.Request) -> OrganizationRecord:
    found = await request.app[SERVICE].store.get_organization(organization_of(request))
    if found is None:  # its keys go with it
        raise NotFound("no organization for this API key", error="Organization not found")
    return found


async def _answer(request: web.Request, org: OrganizationRecord) -> web.Response:
    service = request.app[SERVICE]
    limits = await limits_of(service.store, service.settings, org)
    operator = service.settings.ai_disclosure.required_for(org.name)
    return reply(Organization.of(org, limits, operator_discloses=operator))


def _kept(vocabulary: Vocabulary | None) -> Vocabulary | None:
    """The vocabulary as stored: none when it holds nothing."""
    return None if vocabulary is None or vocabulary.empty else vocabulary


@routes.get("/organization")
async def get_organization(request: web.Request) -> web.Response:
    return await _answer(request, await _organization(request))


@routes.patch("/organization")
async def update_organization(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    max_bytes = service.settings.server.max_body_bytes
    body = parse(await read_json(request, max_bytes), OrganizationUpdate)
    refused = body.operators()
    if refused:
        raise Forbidden(
            f"{refused[0]} is the operator's ('voicedock organizations', [limits]); an "
            "organization sets its display_name, assistant_defaults, calling_hours, vocabulary "
            "and knowledge_embeddings",
            error="Operator setting",
        )
    defaults = body.assistant_defaults
    if defaults is not None and defaults is not UNSET:
        # Decoded by its model; what the settings mean is checked below (check_defaults).
        defaults = sent(parse(defaults, AssistantDefaultsUpdate, "assistant_defaults"))
    base = await _organization(request)
    assistant_defaults = base.assistant_defaults
    if defaults is not UNSET:
        assistant_defaults = check_defaults(defaults, base.assistant_defaults)
        settings = service.settings  # the keys its sections name, as for an assistant
        key_refs = KeyRefs(service.store, base.id, settings.byok, settings.speech)
        await key_refs.check(assistant_defaults, partial=True)
    calling_hours = base.calling_hours if body.calling_hours is UNSET else body.calling_hours
    if calling_hours is not None:
        try:
            daily_window(calling_hours)
        except ValueError as exc:
            raise BadRequest(f"calling_hours: {exc}") from None
    embeddings = base.knowledge_embeddings
    if body.knowledge_embeddings is not UNSET:
        embeddings = body.knowledge_embeddings
        if embeddings is not None:
            policy = service.engine.egress_policy
            await check_setting(embeddings, base.id, service.store, service.settings.byok, policy)
    updated = dataclasses.replace(
        base,
        display_name=base.display_name if body.display_name is UNSET else body.display_name or "",
        assistant_defaults=assistant_defaults,
        ai_disclosure_required=base.ai_disclosure_required
        if body.ai_disclosure_required is UNSET
        else body.ai_disclosure_required,
        calling_hours=calling_hours,
        vocabulary=base.vocabulary if body.vocabulary is UNSET else _kept(body.vocabulary),
        knowledge_embeddings=embeddings,
    )
    async with service.store.transaction() as tx:
        await tx.update_organization(updated)
    return await _answer(request, updated)
