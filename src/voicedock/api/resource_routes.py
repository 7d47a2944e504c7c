"""Assistants (CRUD per organization), phone numbers (the operator's: an organization reads
its own and sets their label and assistant), trunks (read-only, those open to the
organization), health."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import Any

import msgspec
from aiohttp import web

from voicedock.api.body import read_json
from voicedock.api.keys import SERVICE
from voicedock.api.middleware import organization_of
from voicedock.api.models.assistants import (
    AssistantCreate,
    AssistantList,
    AssistantUpdate,
    assistant_reply,
)
from voicedock.api.models.base import parse, reply
from voicedock.api.models.health import Health
from voicedock.api.models.phone_numbers import PhoneNumber as PhoneNumberReply
from voicedock.api.models.phone_numbers import PhoneNumberList, PhoneNumberUpdate, TrunkList
from voicedock.api.models.phone_numbers import Trunk as TrunkReply
from voicedock.calls import fields
from voicedock.calls.assistant_config import CONFIG_FIELDS, check_config, resolve_provider
from voicedock.calls.organization_settings import with_defaults
from voicedock.config import SpeechSettings
from voicedock.domain.records import Assistant, PhoneNumber, Trunk, utcnow
from voicedock.domain.secret_fields import restore_masked
from voicedock.egress import EgressPolicy
from voicedock.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    StoreError,
    Unprocessable,
)
from voicedock.logs import describe
from voicedock.validation import is_token

routes = web.RouteTableDef()
log = logging.getLogger("voicedock.api")

ASSISTANT_FIELDS = ("name", "business_name", "active", *CONFIG_FIELDS)


def _path_id(request: web.Request, what: str) -> str:
    value = request.match_info["id"]
    if not is_token(value):
        raise NotFound(f"no {what} with this id", error=f"{what.capitalize()} not found")
    return value


async def _json_object(request: web.Request) -> dict[str, Any]:
    max_bytes = request.app[SERVICE].settings.server.max_body_bytes
    return fields.require_object(await read_json(request, max_bytes))


# -- assistants ---------------------------------------------------------------------------------


def build_assistant(
    obj: dict[str, Any],
    base: Assistant | None,
    org_id: str,
    speech: SpeechSettings,
    egress: EgressPolicy | None = None,
) -> Assistant:
    """A new assistant from a POST body, or ``base`` updated by a PATCH body (400 if invalid,
    a URL the operator's ``egress`` policy refuses included)."""
    fields.reject_unknown(obj, ASSISTANT_FIELDS)
    for key in ("name", "active"):  # never null: not optional settings
        if key in obj and obj[key] is None:
            raise BadRequest(f"{key} must not be null")
    checked = check_config(
        {k: v for k, v in obj.items() if k != "active"}, "body", allow_profile=True
    )
    # A masked provider key read back keeps the stored one (secrets are write-only).
    checked = restore_masked(checked, base.config if base is not None else None)
    name = checked.pop("name", None) or (base.name if base is not None else None)
    if name is None:
        raise BadRequest("name is required")
    business = checked.pop("business_name", base.business_name if base is not None else "")
    if obj.get("business_name", "") is None:  # an explicit null: none
        business = ""
    config = {**(base.config if base is not None else {}), **checked}
    for key in CONFIG_FIELDS:  # an explicit null removes an optional setting
        if key in obj and obj[key] is None:
            config.pop(key, None)
    resolve_provider(config, speech, egress)  # enforces the provider rules and URLs
    now = utcnow()
    return Assistant(
        id=base.id if base is not None else str(uuid.uuid4()),
        organization_id=org_id,
        name=name,
        config=config,
        business_name=business,
        active=fields.boolean(obj, "active", base.active if base is not None else True),
        created_at=base.created_at if base is not None else now,
        updated_at=now,
    )


async def _assistant(request: web.Request) -> Assistant:
    found = await request.app[SERVICE].store.get_assistant(
        organization_of(request), _path_id(request, "assistant")
    )
    if found is None:
        raise NotFound("no assistant with this id", error="Assistant not found")
    return found


@routes.get("/assistants")
async def list_assistants(request: web.Request) -> web.Response:
    items = await request.app[SERVICE].store.list_assistants(organization_of(request))
    return reply(AssistantList(assistants=[assistant_reply(a) for a in items]))


@routes.post("/assistants")
async def create_assistant(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    obj = await _json_object(request)
    org_id = organization_of(request)
    org = await service.store.get_organization(org_id)
    # What the body leaves out: the organization's defaults (GET /organization).
    defaults = org.assistant_defaults if org is not None else {}
    egress = service.engine.egress_policy
    speech = service.settings.speech
    assistant = build_assistant(with_defaults(obj, defaults), None, org_id, speech, egress)
    parse(obj, AssistantCreate)  # and nothing the document does not say
    async with service.store.transaction() as tx:
        await tx.insert_assistant(assistant)
    return reply(assistant_reply(assistant), 201)


@routes.get("/assistants/{id}")
async def get_assistant(request: web.Request) -> web.Response:
    return reply(assistant_reply(await _assistant(request)))


@routes.patch("/assistants/{id}")
async def update_assistant(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    base = await _assistant(request)
    obj = await _json_object(request)
    egress = service.engine.egress_policy
    updated = build_assistant(obj, base, base.organization_id, service.settings.speech, egress)
    parse(obj, AssistantUpdate)
    async with service.store.transaction() as tx:
        await tx.update_assistant(updated)
    return reply(assistant_reply(updated))


@routes.delete("/assistants/{id}")
async def delete_assistant(request: web.Request) -> web.Response:
    store = request.app[SERVICE].store
    assistant = await _assistant(request)
    numbers = await store.list_phone_numbers(assistant.organization_id)
    if any(n.assistant_id == assistant.id for n in numbers):
        raise Conflict("a phone number still answers with this assistant; reassign it first")
    async with store.transaction() as tx:
        await tx.delete_assistant(assistant.organization_id, assistant.id)
    return web.Response(status=204)


# -- phone numbers ------------------------------------------------------------------------------


async def _number(request: web.Request) -> PhoneNumber:
    found = await request.app[SERVICE].store.get_phone_number(
        organization_of(request), _path_id(request, "phone number")
    )
    if found is None:
        raise NotFound("no phone number with this id", error="Phone number not found")
    return found


OPERATOR_NUMBER_FIELDS = ("number", "trunk", "max_concurrent_calls")  # the operator's alone
TENANT_NUMBER_FIELDS = ("label", "assistant_id")  # what an organization may change
NUMBER_FIELDS = (*OPERATOR_NUMBER_FIELDS, *TENANT_NUMBER_FIELDS)


def _operators_numbers(what: str) -> Forbidden:
    return Forbidden(
        f"{what}: phone numbers are created, moved and removed by the operator of this node"
        " (its configuration or 'voicedock numbers'); an organization may change a number's"
        " label and assistant_id",
        error="Operator setting",
    )


@routes.get("/phone-numbers")
async def list_numbers(request: web.Request) -> web.Response:
    items = await request.app[SERVICE].store.list_phone_numbers(organization_of(request))
    return reply(PhoneNumberList(phone_numbers=[PhoneNumberReply.of(n) for n in items]))


@routes.post("/phone-numbers")
async def create_number(request: web.Request) -> web.Response:
    """Refused for every key: the operator assigns numbers (nothing is read or stored)."""
    raise _operators_numbers("no API key creates a phone number")


@routes.get("/phone-numbers/{id}")
async def get_number(request: web.Request) -> web.Response:
    return reply(PhoneNumberReply.of(await _number(request)))


@routes.patch("/phone-numbers/{id}")
async def update_number(request: web.Request) -> web.Response:
    store = request.app[SERVICE].store
    base = await _number(request)
    obj = await _json_object(request)
    fields.reject_unknown(obj, NUMBER_FIELDS)
    for key in OPERATOR_NUMBER_FIELDS:
        if key in obj:
            raise _operators_numbers(f"{key} is the operator's")
    assistant_id = fields.identifier(obj, "assistant_id")
    parse(obj, PhoneNumberUpdate)
    if (
        assistant_id is not None
        and await store.get_assistant(base.organization_id, assistant_id) is None
    ):
        raise Unprocessable("no assistant with this id", error="Unknown assistant")
    updated = dataclasses.replace(
        base,
        assistant_id=assistant_id if "assistant_id" in obj else base.assistant_id,
        label=(
            fields.text(obj, "label", max_len=200, multiline=False) or ""
            if "label" in obj
            else base.label
        ),
        updated_at=utcnow(),
    )
    async with store.transaction() as tx:
        await tx.update_phone_number(updated)
    return reply(PhoneNumberReply.of(updated))


@routes.delete("/phone-numbers/{id}")
async def delete_number(request: web.Request) -> web.Response:
    """Refused for the organization's own numbers (the operator removes them); another
    organization's number, or none, is 404 as on every other route."""
    await _number(request)
    raise _operators_numbers("no API key removes a phone number")


# -- trunks and health --------------------------------------------------------------------------


async def _visible_trunks(request: web.Request) -> dict[str, Trunk]:
    """The trunks the request's organization may use ([[trunks]] organizations)."""
    service = request.app[SERVICE]
    org_id = organization_of(request)
    trunks = {t.name: t for t in await service.store.list_trunks()}
    numbers = await service.store.list_phone_numbers(org_id)
    visible = service.engine.trunk_access.visible(trunks, org_id, numbers)
    return {name: trunk for name, trunk in trunks.items() if name in visible}


@routes.get("/trunks")
async def list_trunks(request: web.Request) -> web.Response:
    trunks = await _visible_trunks(request)
    return reply(TrunkList(trunks=[TrunkReply.of(t) for t in trunks.values()]))


@routes.get("/trunks/{name}")
async def get_trunk(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    trunk = (await _visible_trunks(request)).get(name) if is_token(name) else None
    if trunk is None:
        raise NotFound("no trunk with this name", error="Trunk not found")
    return reply(TrunkReply.of(trunk))


HEALTH_DATABASE_TIMEOUT = 2.0  # seconds; a database slower than this counts as down


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    """``200`` when the service can place calls, even with one of several PBX servers down
    (``pbx.kind = "none"``: when the database answers); ``503`` otherwise, so that a load
    balancer takes a node that cannot place calls out. Public: names components and link kinds,
    never hosts or keys."""
    service = request.app[SERVICE]
    try:
        async with asyncio.timeout(HEALTH_DATABASE_TIMEOUT):
            await service.store.list_trunks()  # the database answers
        database_up = True
    except (StoreError, OSError, TimeoutError) as exc:
        log.warning("health: database not answering: %s", describe(exc))
        database_up = False
    pbx = service.pbx.health()
    disabled = pbx.kind == "none"
    if not database_up:
        status = "unavailable"
    elif disabled or pbx.all_up:
        status = "ok"
    else:
        status = "degraded"
    pbx_body: dict[str, object] = {
        "kind": pbx.kind,
        "status": "disabled" if disabled else _up(pbx.can_place_calls),
        "links": {name: _up(up) for name, up in sorted(pbx.links.items())},
    }
    if pbx.servers:  # several servers: each one's own, by name
        pbx_body["servers"] = {
            name: {
                "status": _up(server.can_place_calls),
                "links": {link: _up(up) for link, up in sorted(server.links.items())},
            }
            for name, server in sorted(pbx.servers.items())
        }
    can_place_calls = database_up and pbx.can_place_calls
    body = {
        "status": status,
        "can_place_calls": can_place_calls,
        "database": {"status": _up(database_up)},
        "pbx": pbx_body,
    }
    serving = status == "ok" or (status == "degraded" and can_place_calls)
    return reply(msgspec.convert(body, Health), status=200 if serving else 503)


def _up(up: bool) -> str:
    return "up" if up else "down"
