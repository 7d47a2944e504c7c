"""Assistants (CRUD per organization; ``/agents``: their deprecated alias), phone numbers (the
operator's: an organization reads its own and sets their label and assistant), trunks
(read-only, those open to the organization), health."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from voicedock.api.keys import SERVICE
from voicedock.api.models.assistants import AssistantCreate, AssistantUpdate, assistant_reply
from voicedock.api.models.base import parse, reply
from voicedock.api.models.health import Health
from voicedock.api.models.phone_numbers import PhoneNumber as PhoneNumberReply
from voicedock.api.models.phone_numbers import PhoneNumberUpdate
from voicedock.api.models.phone_numbers import Trunk as TrunkReply
from voicedock.api.resources import (
    Caller,
    Create,
    Delete,
    Listing,
    Patch,
    Refused,
    Resource,
    created,
    mount,
    stored,
)
from voicedock.calls import fields
from voicedock.calls.analysis_templates import check_template_ref
from voicedock.calls.assistant_config import CONFIG_FIELDS, check_config, resolve_provider
from voicedock.calls.organization_settings import with_defaults
from voicedock.calls.provider_key_refs import check_key_refs
from voicedock.config import SpeechSettings
from voicedock.domain.records import Assistant, PhoneNumber, Trunk, utcnow
from voicedock.domain.secret_fields import restore_masked
from voicedock.egress import EgressPolicy
from voicedock.errors import BadRequest, Conflict, Forbidden, StoreError, Unprocessable
from voicedock.logs import describe

if TYPE_CHECKING:
    from voicedock.store.base import Transaction

routes = web.RouteTableDef()
log = logging.getLogger("voicedock.api")

ASSISTANT_FIELDS = ("name", "business_name", "active", *CONFIG_FIELDS)


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


async def _check_key_refs(caller: Caller, assistant: Assistant) -> None:
    """The provider keys the assistant names, as its calls will use them: the sections the
    operator's engines complete included (``[byok] mode = "required"``)."""
    settings = caller.service.settings
    egress = caller.service.engine.egress_policy
    resolved = resolve_provider(assistant.config, settings.speech, egress)
    await check_key_refs(caller.store, assistant.organization_id, resolved, settings.byok)


def _refs_checked(
    write: Callable[[Transaction, Assistant], Awaitable[object]],
) -> Callable[[Caller, Assistant], Awaitable[Assistant]]:
    """Store an assistant whose references hold: its provider keys, its analysis template."""
    store = stored(write)

    async def run(caller: Caller, assistant: Assistant) -> Assistant:
        await _check_key_refs(caller, assistant)
        await check_template_ref(caller.store, assistant.organization_id, assistant.config)
        return await store(caller, assistant)

    return run


def parse_assistant(caller: Caller, base: Assistant | None, body: object) -> Assistant:
    """A POST body (``base`` None) or a PATCH body onto ``base``: the assistant it makes."""
    service = caller.service
    org_id = base.organization_id if base is not None else caller.organization_id
    egress = service.engine.egress_policy
    obj = fields.require_object(body)
    assistant = build_assistant(obj, base, org_id, service.settings.speech, egress)
    parse(obj, AssistantCreate if base is None else AssistantUpdate)  # nothing undocumented
    return assistant


def parse_new_assistant(caller: Caller, body: object) -> dict[str, Any]:
    """A POST body, checked as it stands (the organization's defaults are added when it is
    stored: ``_insert_assistant``)."""
    obj = fields.require_object(body)
    parse_assistant(caller, None, obj)
    return obj


async def _insert_assistant(caller: Caller, obj: dict[str, Any]) -> Assistant:
    """The new assistant with the organization's defaults for what its body leaves out
    (GET /organization), its provider-key references checked, stored."""
    org = await caller.store.get_organization(caller.organization_id)
    defaults = org.assistant_defaults if org is not None else {}
    assistant = parse_assistant(caller, None, with_defaults(obj, defaults))
    return await _refs_checked(lambda tx, a: tx.insert_assistant(a))(caller, assistant)


async def _delete_assistant(caller: Caller, assistant: Assistant) -> None:
    numbers = await caller.store.list_phone_numbers(assistant.organization_id)
    if any(n.assistant_id == assistant.id for n in numbers):
        raise Conflict("a phone number still answers with this assistant; reassign it first")
    async with caller.store.transaction() as tx:
        await tx.delete_assistant(assistant.organization_id, assistant.id)


ASSISTANTS: Resource[Assistant] = Resource(
    path="/assistants",
    noun="assistant",
    lookup=lambda c, assistant_id: c.store.get_assistant(c.organization_id, assistant_id),
    serialize=assistant_reply,
    list=Listing(run=lambda c: c.store.list_assistants(c.organization_id)),
    create=Create(
        parse=parse_new_assistant,
        run=_insert_assistant,
        reply=created(assistant_reply),
    ),
    patch=Patch(parse=parse_assistant, run=_refs_checked(lambda tx, a: tx.update_assistant(a))),
    delete=Delete(run=_delete_assistant),
)
# The seeds' name for assistants: the same resource, deprecated (docs/agents.md).
AGENTS = ASSISTANTS.alias("/agents")


# -- phone numbers ------------------------------------------------------------------------------


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


def parse_number_patch(_caller: Caller, base: PhoneNumber, body: object) -> PhoneNumber:
    """What an organization may change of a number: its label and its assistant."""
    obj = fields.require_object(body)
    fields.reject_unknown(obj, NUMBER_FIELDS)
    for key in OPERATOR_NUMBER_FIELDS:
        if key in obj:
            raise _operators_numbers(f"{key} is the operator's")
    assistant_id = fields.identifier(obj, "assistant_id")
    parse(obj, PhoneNumberUpdate)
    return dataclasses.replace(
        base,
        assistant_id=assistant_id if "assistant_id" in obj else base.assistant_id,
        label=(
            fields.text(obj, "label", max_len=200, multiline=False) or ""
            if "label" in obj
            else base.label
        ),
        updated_at=utcnow(),
    )


async def _update_number(caller: Caller, updated: PhoneNumber) -> PhoneNumber:
    assistant_id = updated.assistant_id
    org_id = updated.organization_id
    if assistant_id is not None and await caller.store.get_assistant(org_id, assistant_id) is None:
        raise Unprocessable("no assistant with this id", error="Unknown assistant")
    async with caller.store.transaction() as tx:
        await tx.update_phone_number(updated)
    return updated


PHONE_NUMBERS: Resource[PhoneNumber] = Resource(
    path="/phone-numbers",
    noun="phone number",
    lookup=lambda c, number_id: c.store.get_phone_number(c.organization_id, number_id),
    serialize=PhoneNumberReply.of,
    list=Listing(run=lambda c: c.store.list_phone_numbers(c.organization_id)),
    # The operator assigns and removes numbers: refused for every key, nothing read or stored
    # (a DELETE of another organization's number, or of none, is the 404 as everywhere).
    create=Refused(lambda: _operators_numbers("no API key creates a phone number")),
    patch=Patch(parse=parse_number_patch, run=_update_number),
    delete=Refused(lambda: _operators_numbers("no API key removes a phone number")),
)


# -- trunks and health --------------------------------------------------------------------------


async def _visible_trunks(caller: Caller) -> dict[str, Trunk]:
    """The trunks the caller's organization may use ([[trunks]] organizations)."""
    service, org_id = caller.service, caller.organization_id
    trunks = {t.name: t for t in await service.store.list_trunks()}
    numbers = await service.store.list_phone_numbers(org_id)
    visible = service.engine.trunk_access.visible(trunks, org_id, numbers)
    return {name: trunk for name, trunk in trunks.items() if name in visible}


async def _list_trunks(caller: Caller) -> list[Trunk]:
    return list((await _visible_trunks(caller)).values())


async def _lookup_trunk(caller: Caller, name: str) -> Trunk | None:
    return (await _visible_trunks(caller)).get(name)


TRUNKS: Resource[Trunk] = Resource(
    path="/trunks",
    noun="trunk",
    id_name="name",
    lookup=_lookup_trunk,
    serialize=TrunkReply.of,
    list=Listing(run=_list_trunks),
)
RESOURCES = (ASSISTANTS, AGENTS, PHONE_NUMBERS, TRUNKS)
mount(routes, *RESOURCES)


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
