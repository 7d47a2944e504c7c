"""Resolving what an outbound call will run: the assistant snapshot and the caller number."""

from __future__ import annotations

from dataclasses import dataclass

from voicedock.calls.analysis_templates import expand_analysis_template
from voicedock.calls.assistants.config import (
    PROFILE_FIELDS,
    deep_merge,
    resolve_provider,
    tenant_sections,
)
from voicedock.calls.assistants.key_refs import check_key_refs
from voicedock.calls.outbound.placeholders import fill_config
from voicedock.calls.outbound.request import OutboundRequest
from voicedock.calls.tools.templates import expand_tool_templates
from voicedock.calls.trunk_access import TrunkAccess
from voicedock.config import ByokSettings, SpeechSettings
from voicedock.domain.records import Call, JsonObject, PhoneNumber
from voicedock.domain.secret_fields import restore_masked
from voicedock.egress import EgressPolicy
from voicedock.errors import BadRequest, Forbidden, NotFound
from voicedock.store.base import Store


@dataclass(frozen=True, slots=True)
class ResolvedAssistant:
    assistant_id: str | None  # None for a transient assistant
    name: str | None
    business_name: str | None
    config: JsonObject  # the snapshot stored with the call


@dataclass(frozen=True, slots=True)
class NewCall:
    """An outbound call about to be placed, its assistant resolved (``Placement.place``)."""

    call_id: str
    organization_id: str
    destination: str  # E.164, checked against the call policy
    assistant: ResolvedAssistant
    context: str | None
    ring_timeout_seconds: int
    number_id: str | None = None  # this caller number; None: one of number_ids / the pool
    number_ids: tuple[str, ...] = ()  # empty: the organization's pool
    campaign_id: str | None = None
    campaign_max: int = 0  # the campaign's calls at once (0: no limit)
    api_key_id: str | None = None  # the API key that asked for it, recorded on the call
    metadata: JsonObject | None = None  # the client's own object, stored with the call
    # The stored ``scheduled`` call this dials now (None: a new call, stored as it is placed).
    scheduled: Call | None = None


async def resolve_assistant(
    store: Store,
    org_id: str,
    request: OutboundRequest,
    speech: SpeechSettings,
    byok: ByokSettings,
    egress: EgressPolicy | None = None,
) -> ResolvedAssistant:
    """Reference, transient or hybrid mode → one resolved configuration (404/400 on errors;
    with ``egress``, a URL the operator's policy refuses is a 400 too), whose provider keys
    hold as a call will use them (``check_key_refs``: 403/422, ``[byok] mode`` included)."""
    if request.assistant_id is not None:
        saved = await store.get_assistant(org_id, request.assistant_id)
        if saved is None:
            raise NotFound("no assistant with this id", error="Assistant not found")
        if not saved.active:
            raise BadRequest("the assistant is inactive", error="Inactive assistant")
        override = restore_masked(request.assistant_override or {}, saved.config)
        name = override.pop("name", saved.name)
        business = override.pop("business_name", saved.business_name)
        # What the saved configuration holds beyond the list of an organization's settings
        # (stored before it) is ignored; the override was checked with the request.
        config = deep_merge(tenant_sections(saved.config, speech), override)
        assistant_id: str | None = saved.id
    else:
        transient = restore_masked(request.assistant or {}, None)
        name = transient.pop("name", None)
        business = transient.pop("business_name", None)
        config = transient
        assistant_id = None
    for key in PROFILE_FIELDS:
        config.pop(key, None)
    if request.first_message is not None:
        config["first_message"] = request.first_message
    if request.variables:  # this call's values of the {{placeholders}}, as a campaign's
        config = fill_config(config, request.variables)
    await expand_tool_templates(store, org_id, config)
    await expand_analysis_template(store, org_id, config)
    if request.record is not None:
        config["record"] = request.record
    resolved = resolve_provider(config, speech, egress)
    await check_key_refs(store, org_id, resolved, byok, speech)
    return ResolvedAssistant(
        assistant_id=assistant_id,
        name=name or None,
        business_name=business or None,
        config=resolved,
    )


async def check_number_choice(
    store: Store, org_id: str, number_id: str | None, access: TrunkAccess
) -> PhoneNumber | None:
    """Tell "not yours"/"none configured"/"trunk not open to you" apart before reserving (which
    only says "none"). Another organization's number is "not found", as a missing one. The
    number ``number_id`` names (``None`` without one: the organization's pool)."""
    if number_id is not None:
        number = await store.get_phone_number(org_id, number_id)
        if number is None:
            raise NotFound("no phone number with this id", error="Phone number not found")
        if not access.serves(number.trunk, org_id):
            raise Forbidden(
                f"the number's trunk {number.trunk!r} is not open to your organization",
                error="Trunk not allowed",
            )
        return number
    numbers = await store.list_phone_numbers(org_id)
    if not numbers:
        raise BadRequest(
            "the organization has no phone numbers to call from", error="No phone number"
        )
    if not any(access.serves(n.trunk, org_id) for n in numbers):
        raise Forbidden(
            "none of the organization's phone numbers is on a trunk open to it",
            error="Trunk not allowed",
        )
    return None
