"""``/assistants``: an organization's assistants (create, list, get, patch, delete)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from voicedock.api.audit import Audited
from voicedock.api.models.assistants import AssistantCreate, AssistantUpdate, assistant_reply
from voicedock.api.models.base import parse, sent
from voicedock.api.resources import (
    Caller,
    Create,
    Delete,
    Listing,
    Patch,
    Resource,
    created,
    mount,
    stored,
)
from voicedock.calls import json_readers
from voicedock.calls.assistants.analysis_templates import check_template_ref
from voicedock.calls.assistants.config import check_config, resolve_provider
from voicedock.calls.assistants.key_refs import KeyRefs
from voicedock.calls.assistants.knowledge_refs import check_knowledge_refs
from voicedock.calls.assistants.squads_in_use import refuse_while_in_squads
from voicedock.calls.tools.templates import check_tool_template_refs
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import CONFIG_FIELDS, config_json, config_of
from voicedock.domain.json import JsonObject
from voicedock.domain.records import Assistant, utcnow
from voicedock.domain.secret_fields import check_secrets_stay, restore_masked
from voicedock.egress import EgressPolicy
from voicedock.errors import BadRequest, Conflict
from voicedock.organizations.settings import with_defaults

if TYPE_CHECKING:
    from voicedock.store.base import Transaction

routes = web.RouteTableDef()


ASSISTANT_FIELDS = ("name", "business_name", "active", *CONFIG_FIELDS)


def build_assistant(
    obj: JsonObject,
    base: Assistant | None,
    org_id: str,
    speech: SpeechSettings,
    egress: EgressPolicy | None = None,
) -> Assistant:
    """A new assistant from a POST body, or ``base`` updated by a PATCH body (400 if invalid,
    a URL the operator's ``egress`` policy refuses included)."""
    json_readers.reject_unknown(obj, ASSISTANT_FIELDS)
    for key in ("name", "active"):  # never null: not optional settings
        if key in obj and obj[key] is None:
            raise BadRequest(f"{key} must not be null")
    checked = check_config(
        {k: v for k, v in obj.items() if k != "active"}, "body", allow_profile=True
    )
    # A masked provider key read back keeps the stored one (secrets are write-only).
    stored = config_json(base.config) if base is not None else None
    given, checked = checked, restore_masked(checked, stored)
    given_name = checked.pop("name", None)  # check_config keeps only non-empty texts
    name = given_name if isinstance(given_name, str) else (base.name if base is not None else None)
    if name is None:
        raise BadRequest("name is required")
    given_business = checked.pop("business_name", None)
    business = (
        given_business
        if isinstance(given_business, str)
        else (base.business_name if base is not None else "")
    )
    if obj.get("business_name", "") is None:  # an explicit null: none
        business = ""
    config = {**(stored or {}), **checked}
    for key in CONFIG_FIELDS:  # an explicit null removes an optional setting
        if key in obj and obj[key] is None:
            config.pop(key, None)
    check_secrets_stay(given, config, stored)  # a stored key goes where it went
    resolve_provider(config, speech, egress)  # enforces the provider rules and URLs
    now = utcnow()
    return Assistant(
        id=base.id if base is not None else str(uuid.uuid4()),
        organization_id=org_id,
        name=name,
        config=config_of(config),
        business_name=business,
        active=json_readers.boolean(obj, "active", base.active if base is not None else True),
        created_at=base.created_at if base is not None else now,
        updated_at=now,
    )


async def _check_key_refs(caller: Caller, assistant: Assistant) -> None:
    """The provider keys the assistant names, as its calls will use them: every engine they
    reach, the operator's engines for what it leaves out included (``[byok] mode =
    "required"``)."""
    settings = caller.service.settings
    egress = caller.service.engine.egress_policy
    resolved = resolve_provider(config_json(assistant.config), settings.speech, egress)
    key_refs = KeyRefs(caller.store, assistant.organization_id, settings.byok, settings.speech)
    await key_refs.check(resolved)


Write = Callable[["Transaction", Assistant, str | None], Awaitable[object]]


def refs_checked(write: Write) -> Callable[[Caller, Assistant], Awaitable[Assistant]]:
    """Store an assistant whose references hold: its provider keys, its tool and analysis
    templates, its knowledge bases; as a version made by the caller's key."""

    async def run(caller: Caller, assistant: Assistant) -> Assistant:
        await _check_key_refs(caller, assistant)
        config = config_json(assistant.config)
        await check_template_ref(caller.store, assistant.organization_id, config)
        await check_tool_template_refs(caller.store, assistant.organization_id, config)
        await check_knowledge_refs(caller.store, assistant.organization_id, config)
        by = caller.api_key.id

        async def as_version(tx: Transaction, a: Assistant) -> object:
            return await write(tx, a, by)

        return await stored(as_version)(caller, assistant)

    return run


# An assistant changed (PATCH, a rollback): stored as its next version.
store_changed_assistant = refs_checked(lambda tx, a, by: tx.update_assistant(a, by))


async def _store_patched(caller: Caller, assistant: Assistant) -> Assistant:
    """A PATCH's assistant stored as its next version; one that changes none of its settings
    stores nothing (no version changing nothing) and answers the assistant as it is. An
    assistant whose releases are gated (or on a node that gates every release) is changed
    through a draft: 409 ``Release gate set``."""
    current = await caller.store.get_assistant(assistant.organization_id, assistant.id)
    if current is not None and current.same_settings(assistant):
        return current
    gated = caller.service.settings.rehearsal.release_gate_required
    if gated or (current is not None and current.release_gate is not None):
        raise Conflict(
            "the assistant's changes go live through a draft a test suite passed: POST "
            "/assistants/{id}/drafts, run its release gate's suite on the draft's version, "
            "then POST /assistants/{id}/publish",
            error=RELEASE_GATE_SET,
        )
    return await store_changed_assistant(caller, assistant)


RELEASE_GATE_SET = "Release gate set"


def _building(caller: Caller, base: Assistant | None) -> Callable[[JsonObject], Assistant]:
    """What a POST body (``base`` None) or a PATCH body onto ``base`` means: the assistant it
    makes (``build_assistant``: the checks no schema states)."""
    service = caller.service
    org_id = base.organization_id if base is not None else caller.organization_id
    speech, egress = service.settings.speech, service.engine.egress_policy
    return lambda obj: build_assistant(obj, base, org_id, speech, egress)


def _decoded(caller: Caller, base: Assistant | None, body: object) -> tuple[JsonObject, Assistant]:
    """A POST or PATCH body as its model decodes it, and the assistant it makes of ``base``
    (a refusal in the check's words where it refuses the body too)."""
    build = _building(caller, base)
    decoded = parse(
        body,
        AssistantCreate if base is None else AssistantUpdate,
        words=lambda value, _where: build(json_readers.require_object(value)),
    )
    obj = sent(decoded)
    return obj, build(obj)


def parse_assistant(caller: Caller, base: Assistant, body: object) -> Assistant:
    """A PATCH body onto ``base``: the assistant it makes."""
    return _decoded(caller, base, body)[1]


def parse_new_assistant(caller: Caller, body: object) -> JsonObject:
    """A POST body, checked as it stands (the organization's defaults are added when it is
    stored: ``_insert_assistant``)."""
    return _decoded(caller, None, body)[0]


async def _insert_assistant(caller: Caller, obj: JsonObject) -> Assistant:
    """The new assistant with the organization's defaults for what its body leaves out
    (GET /organization), its provider-key references checked, stored."""
    org = await caller.store.get_organization(caller.organization_id)
    defaults = org.assistant_defaults if org is not None else {}
    assistant = _building(caller, None)(with_defaults(obj, defaults))
    return await refs_checked(lambda tx, a, by: tx.insert_assistant(a, by))(caller, assistant)


async def _delete_assistant(caller: Caller, assistant: Assistant) -> None:
    numbers = await caller.store.list_phone_numbers(assistant.organization_id)
    if any(n.assistant_id == assistant.id for n in numbers):
        raise Conflict("a phone number still answers with this assistant; reassign it first")
    await refuse_while_in_squads(caller.store, assistant.organization_id, assistant.id)
    async with caller.store.transaction() as tx:
        await tx.delete_assistant(assistant.organization_id, assistant.id)
        await caller.record(tx, assistant.id)


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
    patch=Patch(parse=parse_assistant, run=_store_patched),
    delete=Delete(run=_delete_assistant),
    audit=Audited("assistant"),
)
# The seeds' name for assistants: the same resource, deprecated (docs/agents.md).
AGENTS = ASSISTANTS.alias("/agents")


RESOURCES = (
    ASSISTANTS,
    AGENTS,
)
mount(routes, *RESOURCES)
