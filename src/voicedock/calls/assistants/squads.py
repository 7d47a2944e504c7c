"""Squads' members as a configuration: what no schema states of them, checked when a squad is
stored (``/squads``); the snapshot a call placed with a squad keeps (``resolve_squad``).

Each member's name is its own in the squad; a destination names another member of it; each
member chooses its assistant as a call does (a saved one, optionally with an override, or a
configuration of its own: ``check_assistant_choice``), and a saved one must exist (422
naming the member otherwise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

import msgspec

from voicedock.calls.assistants.config import (
    PROFILE_FIELDS,
    check_assistant_choice,
    deep_merge,
    resolve_provider,
    tenant_sections,
)
from voicedock.calls.assistants.resolve import (
    AssistantChoice,
    ChosenAssistant,
    ResolvedAssistant,
    check_saved_assistant,
    resolve_assistant,
)
from voicedock.config import ByokSettings, SpeechSettings
from voicedock.domain.assistant_config import config_json
from voicedock.domain.json import json_object
from voicedock.domain.squads import DEFAULT_MAX_HANDOFFS, CallMember, CallSquad, Member
from voicedock.egress import EgressPolicy
from voicedock.errors import BadRequest, NotFound
from voicedock.store.base import Store

# The title of a squad whose members break a rule no schema states (names, destinations).
INVALID_SQUAD = "Invalid squad"


def check_members(members: list[Member]) -> list[Member]:
    """The members as stored: each assistant choice checked (a configuration without its
    nulls); 400 naming the member's field otherwise."""
    names = [m.name for m in members]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise BadRequest(
                f"members[{index}].name: another member is named {name!r}", error=INVALID_SQUAD
            )
    checked: list[Member] = []
    for index, member in enumerate(members):
        where = f"members[{index}]"
        _check_destinations(member, names, where)
        try:
            assistant, override = check_assistant_choice(
                member.assistant_id, member.assistant, member.assistant_override
            )
        except BadRequest as exc:
            raise BadRequest(_named(exc.message, member, where), error=exc.error) from None
        checked.append(
            msgspec.structs.replace(member, assistant=assistant, assistant_override=override)
        )
    return checked


def _check_destinations(member: Member, names: list[str], where: str) -> None:
    seen: set[str] = set()
    for at, destination in enumerate(member.destinations):
        there = f"{where}.destinations[{at}].member"
        if destination.member == member.name:
            raise BadRequest(
                f"{there}: a member does not hand the call over to itself", error=INVALID_SQUAD
            )
        if destination.member not in names:
            raise BadRequest(
                f"{there}: the squad has no member {destination.member!r}", error=INVALID_SQUAD
            )
        if destination.member in seen:
            raise BadRequest(f"{there}: named by another destination already", error=INVALID_SQUAD)
        seen.add(destination.member)


def _named(message: str, member: Member, where: str) -> str:
    """A configuration's refusal named from the squad: its member and which configuration
    (the one the member has) when the message names a field of it alone."""
    part = "assistant_override" if member.assistant_id is not None else "assistant"
    if message.startswith(("assistant", "assistant_id", part)):
        return f"{where}.{message}"
    return f"{where}.{part}.{message}"


async def check_saved_assistants(store: Store, organization_id: str, members: list[Member]) -> None:
    """422 naming the first member whose saved assistant the organization does not have."""
    for index, member in enumerate(members):
        field = f"members[{index}].assistant_id"
        await check_saved_assistant(store, organization_id, member.assistant_id, field)


async def check_member_configs(
    store: Store,
    organization_id: str,
    members: list[Member],
    speech: SpeechSettings,
    egress: EgressPolicy | None,
) -> None:
    """Each member's configuration resolves on this node as its calls will run it (its
    override merged onto its saved assistant): the provider rules, the engines and voices the
    node has, the operator's egress policy (``resolve_provider``); 400 naming the member's
    field otherwise, as a call placed with the squad would be refused. A saved assistant the
    organization does not have is ``check_saved_assistants``'."""
    for index, member in enumerate(members):
        config = json_object(member.assistant)
        if member.assistant_id is not None:
            saved = await store.get_assistant(organization_id, member.assistant_id)
            if saved is None:
                continue
            sections = tenant_sections(config_json(saved.config), speech)
            config = deep_merge(sections, json_object(member.assistant_override) or {})
        if config is None:
            continue
        try:
            resolve_provider(
                {k: v for k, v in config.items() if k not in PROFILE_FIELDS}, speech, egress
            )
        except BadRequest as exc:
            where = f"members[{index}]"
            raise BadRequest(_named(exc.message, member, where), error=exc.error) from None


async def resolve_squad(
    store: Store,
    organization_id: str,
    squad_id: str | Sequence[Member],
    choice: AssistantChoice,
    speech: SpeechSettings,
    byok: ByokSettings,
    egress: EgressPolicy | None = None,
    *,
    max_handoffs: int = DEFAULT_MAX_HANDOFFS,
) -> ResolvedAssistant:
    """The call's assistant when it is placed with a squad: its first member's, resolved as a
    call's assistant is (``resolve_assistant``), with every member resolved so (the snapshot
    the call keeps: a squad changed later does not change it); of ``choice``, what it says of
    the call (its first message, said by the first member, its recording, its variables).
    ``squad_id``: a stored squad (404 when the organization has none of this id), or the
    members of a squad sent with the call (an inline squad, checked already)."""
    stored_id: str | None = None
    version: int | None = None
    if isinstance(squad_id, str):
        squad = await store.get_squad(organization_id, squad_id)
        if squad is None:
            raise NotFound("no squad with this id", error="Squad not found")
        stored_id, given, version = squad.id, squad.members, squad.version
    else:
        given = list(squad_id)
    members: list[CallMember] = []
    first: ResolvedAssistant | None = None
    for index, member in enumerate(given):
        chosen = ChosenAssistant(
            assistant_id=member.assistant_id,
            assistant=json_object(member.assistant),
            assistant_override=json_object(member.assistant_override),
            first_message=choice.first_message if index == 0 else None,
            record=choice.record,
            variables=choice.variables,
        )
        resolved = await resolve_assistant(store, organization_id, chosen, speech, byok, egress)
        first = first or resolved
        members.append(
            CallMember(
                name=member.name,
                assistant_id=resolved.assistant_id,
                agent_name=resolved.name,
                config=resolved.config,
                destinations=member.destinations,
                carry_over=member.carry_over,
            )
        )
    assert first is not None  # a squad has a member
    called = CallSquad(
        squad_id=stored_id, members=members, max_handoffs=max_handoffs, version=version
    )
    return dataclasses.replace(first, squad=called)


class SquadOrAssistant(AssistantChoice, Protocol):
    """A request that names a squad or an assistant (``OutboundRequest`` says it so)."""

    @property
    def squad_id(self) -> str | None: ...
    @property
    def squad(self) -> Sequence[Member] | None: ...  # an inline squad's members


async def resolve_chosen(
    store: Store,
    organization_id: str,
    choice: SquadOrAssistant,
    speech: SpeechSettings,
    byok: ByokSettings,
    egress: EgressPolicy | None,
    *,
    max_handoffs: int,
    version: int | None = None,
) -> ResolvedAssistant:
    """The assistant of a call (or a campaign's calls) as ``choice`` names it: its squad's
    first member, with the squad (``resolve_squad``), else the assistant
    (``resolve_assistant``; ``version``: that version of it)."""
    squad = choice.squad_id if choice.squad_id is not None else choice.squad
    if squad is None:
        return await resolve_assistant(
            store, organization_id, choice, speech, byok, egress, version=version
        )
    return await resolve_squad(
        store,
        organization_id,
        squad,
        choice,
        speech,
        byok,
        egress,
        max_handoffs=max_handoffs,
    )
