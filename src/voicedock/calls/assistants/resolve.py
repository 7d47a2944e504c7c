"""Which configuration a call runs: the assistant a request or a number chooses, resolved.

A choice names a saved assistant (reference mode, ``assistant_id``), brings a whole
configuration (transient mode, ``assistant``) or both, the configuration changing the saved one
for this call (hybrid mode, ``assistant_override``). ``resolve_assistant`` turns it into the
snapshot a call stores: the override merged, this call's texts filled, templates expanded,
the provider rules applied, the provider keys checked as the call will use them.

An outbound call, a campaign and an inbound call (``calls.assistants.request``) all choose
this way; what else a request says (its destination, its schedule) is theirs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

from voicedock.calls.assistants.analysis_templates import expand_analysis_template
from voicedock.calls.assistants.caller_memory import remembered
from voicedock.calls.assistants.config import (
    PROFILE_FIELDS,
    deep_merge,
    resolve_provider,
    tenant_sections,
)
from voicedock.calls.assistants.key_refs import KeyRefs
from voicedock.calls.assistants.knowledge_refs import check_knowledge_refs
from voicedock.calls.assistants.placeholders import fill_config
from voicedock.calls.assistants.traffic_split import split_version
from voicedock.calls.assistants.vocabulary import with_vocabulary
from voicedock.calls.tools.templates import expand_tool_templates
from voicedock.config import ByokSettings, SpeechSettings
from voicedock.domain.assistant_config import AssistantConfig, config_json, config_of, set_or
from voicedock.domain.campaigns import Campaign
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.domain.records import Assistant, Call
from voicedock.domain.secret_fields import check_secrets_stay, restore_masked
from voicedock.domain.squads import CallSquad
from voicedock.domain.traffic_split import TrafficShare
from voicedock.egress import EgressPolicy
from voicedock.errors import BadRequest, NotFound, Unprocessable
from voicedock.store.base import Store


class AssistantChoice(Protocol):
    """What a request says of its call's assistant (``OutboundRequest`` says it so)."""

    @property
    def assistant_id(self) -> str | None: ...
    @property
    def assistant(self) -> JsonObject | None: ...  # transient mode: a whole configuration
    @property
    def assistant_override(self) -> JsonObject | None: ...  # hybrid mode
    @property
    def first_message(self) -> str | None: ...  # this call's, whatever the assistant says
    @property
    def record(self) -> bool | None: ...  # this call's recording, whatever the assistant says
    @property
    def variables(self) -> Mapping[str, str]: ...  # this call's {{placeholders}}
    @property
    def party(self) -> str | None: ...  # the other party's number: a traffic split's choice


@dataclass(frozen=True, slots=True)
class ChosenAssistant:
    """An assistant chosen without a request: an inbound call's (its number's, or the one the
    organization's server answers with)."""

    assistant_id: str | None = None
    assistant: JsonObject | None = None
    assistant_override: JsonObject | None = None
    first_message: str | None = None
    record: bool | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    party: str | None = None  # the caller of an inbound call


class AssistantFields(TypedDict):
    """The assistant as a campaign stores it: its fields of ``Campaign``."""

    assistant_id: str | None
    agent_name: str | None
    business_name: str | None
    assistant_config: AssistantConfig
    squad: CallSquad | None
    assistant_version: int | None


class CallAssistantFields(AssistantFields):
    """The assistant as a call stores it: its fields of ``Call``."""

    first_message: str | None


@dataclass(frozen=True, slots=True)
class ResolvedAssistant:
    assistant_id: str | None  # None for a transient assistant
    name: str | None
    business_name: str | None
    config: AssistantConfig  # the snapshot stored with the call
    squad: CallSquad | None = None  # the squad it is the first member of, as placed
    version: int | None = None  # the saved assistant's version (None: a transient one)

    @classmethod
    def of(cls, stored: Call | Campaign) -> ResolvedAssistant:
        """The assistant a stored call or campaign runs: the snapshot it stored."""
        return cls(
            stored.assistant_id,
            stored.agent_name,
            stored.business_name,
            stored.assistant_config,
            stored.squad,
            stored.assistant_version,
        )

    @property
    def first_message(self) -> str | None:
        """What the assistant says first."""
        return set_or(self.config.first_message, None)

    def filled(self, variables: Mapping[str, str]) -> ResolvedAssistant:
        """The assistant with these values of its configuration's ``{{placeholders}}``."""
        return dataclasses.replace(self, config=fill_config(self.config, variables))

    def campaign_fields(self) -> AssistantFields:
        """The snapshot a campaign stores (``Campaign(**assistant.campaign_fields(), ...)``)."""
        return AssistantFields(
            assistant_id=self.assistant_id,
            agent_name=self.name,
            business_name=self.business_name,
            assistant_config=self.config,
            squad=self.squad,
            assistant_version=self.version,
        )

    def call_fields(self) -> CallAssistantFields:
        """The snapshot a call stores (``Call(**assistant.call_fields(), ...)``)."""
        return CallAssistantFields(**self.campaign_fields(), first_message=self.first_message)


async def check_saved_assistant(
    store: Store, organization_id: str, assistant_id: str | None, field: str
) -> None:
    """422 ``Unknown assistant`` naming ``field`` when ``assistant_id`` is no assistant of the
    organization (another organization's included), for a configuration that stores it (a
    squad's member, a test suite); None passes."""
    if assistant_id is None:
        return
    if await store.get_assistant(organization_id, assistant_id) is None:
        raise Unprocessable(f"{field}: no assistant with this id", error="Unknown assistant")


async def resolve_assistant(
    store: Store,
    org_id: str,
    choice: AssistantChoice,
    speech: SpeechSettings,
    byok: ByokSettings,
    egress: EgressPolicy | None = None,
    *,
    version: int | None = None,
    remember: bool = True,
    split: Sequence[TrafficShare] | None = None,
) -> ResolvedAssistant:
    """Reference, transient or hybrid mode → one resolved configuration (404/400 on errors;
    with ``egress``, a URL the operator's policy refuses is a 400 too), whose provider keys
    hold as a call will use them (``KeyRefs.check``: 403/422, ``[byok] mode`` included).
    ``version``: that version of the saved assistant (a test run's: a draft's included; 422
    ``Unknown assistant version``), not the one its calls run. ``remember``: False, the call
    is not told what earlier calls left of its party (an ``assistant-request`` answer said
    so). ``split``: the versions a number's calls are split to, instead of the assistant's."""
    if choice.assistant_id is not None:
        saved = await store.get_assistant(org_id, choice.assistant_id)
        if saved is None:
            raise NotFound("no assistant with this id", error="Assistant not found")
        if version is not None:
            saved = await _named_version(store, saved, version)
        if not saved.active:
            raise BadRequest("the assistant is inactive", error="Inactive assistant")
        if version is None:
            saved = await split_version(store, saved, choice.party, split)
        stored = config_json(saved.config)
        override = restore_masked(choice.assistant_override or {}, stored)
        name = override.pop("name", saved.name)
        business = override.pop("business_name", saved.business_name)
        # What the saved configuration holds beyond the list of an organization's settings
        # (stored before it) is ignored; the override was checked with the request.
        saved_sections = tenant_sections(stored, speech)
        config = deep_merge(saved_sections, override)
        # The saved provider keys go where they went: not to an override's provider or URL.
        check_secrets_stay(choice.assistant_override or {}, config, saved_sections)
        assistant_id: str | None = saved.id
        ran: int | None = saved.version
    else:
        transient = restore_masked(choice.assistant or {}, None)
        name = transient.pop("name", None)
        business = transient.pop("business_name", None)
        config = transient
        assistant_id = ran = None
    for key in PROFILE_FIELDS:
        config.pop(key, None)
    if choice.first_message is not None:
        config["first_message"] = choice.first_message
    await expand_tool_templates(store, org_id, config)
    await check_knowledge_refs(store, org_id, config)
    await expand_analysis_template(store, org_id, config)
    if choice.record is not None:
        config["record"] = choice.record
    resolved = resolve_provider(config, speech, egress)
    org = await store.get_organization(org_id)
    resolved = with_vocabulary(resolved, None if org is None else org.vocabulary)
    await KeyRefs(store, org_id, byok, speech).check(resolved)
    typed = config_of(resolved)
    if choice.variables:  # this call's values of the {{placeholders}}, as a campaign's
        typed = fill_config(typed, choice.variables)
    if remember:
        typed = await remembered(store, org_id, typed, choice.party)
    return ResolvedAssistant(
        assistant_id=assistant_id,
        name=_profile_text(name),
        business_name=_profile_text(business),
        config=typed,
        version=ran,
    )


UNKNOWN_VERSION = "Unknown assistant version"


async def _named_version(store: Store, saved: Assistant, number: int) -> Assistant:
    """``saved`` with the settings and number of its version ``number`` (422 when it has none)."""
    version = await store.get_assistant_version(saved.organization_id, saved.id, number)
    if version is None:
        raise Unprocessable(
            f"assistant_version: the assistant has no version {number}", error=UNKNOWN_VERSION
        )
    return version.restored(saved)


def _profile_text(value: JsonValue) -> str | None:
    """A name or business name as ``check_config`` let it through (a text); none when empty."""
    return value if isinstance(value, str) and value else None
