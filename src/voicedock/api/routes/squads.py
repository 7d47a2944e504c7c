"""``/squads`` (an organization's assistants that hand a call over to each other: create, list
by cursor, get, patch, delete), and their versions (``/squads/{id}/versions``, ``/rollback``:
``api/record_versions.py``). The members' rules are ``calls/assistants/squads.py``'s."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable

import msgspec
from aiohttp import web
from msgspec import UnsetType

from voicedock.api.audit import Audited
from voicedock.api.models.assistant_choice import SquadMember
from voicedock.api.models.base import parse
from voicedock.api.models.record_versions import SquadVersionDetail
from voicedock.api.models.squads import Squad as SquadReply
from voicedock.api.models.squads import SquadCreate, SquadListQuery, SquadUpdate
from voicedock.api.record_versions import RecordVersions
from voicedock.api.resources import Caller, Resource, mount, oldest_first
from voicedock.calls.assistants.squads import (
    check_member_configs,
    check_members,
    check_saved_assistants,
)
from voicedock.calls.assistants.squads_in_use import refuse_while_squad_used
from voicedock.domain.json import JsonObject, json_object
from voicedock.domain.record_versions import VersionedKind, same_settings
from voicedock.domain.records import Squad, utcnow
from voicedock.domain.secret_fields import check_secrets_stay, restore_masked
from voicedock.domain.squads import Member
from voicedock.store.base import Transaction

routes = web.RouteTableDef()

MAX_SQUADS_PER_ORGANIZATION = 200


def _members(given: list[SquadMember], before: Squad | None) -> list[Member]:
    """The members sent, as stored: a masked secret sent back is the stored one (the stored
    member of the same name's)."""
    members = [m.member() for m in given]
    if before is not None:
        members = [_unmasked(m, before.member(m.name)) for m in members]
    return check_members(members)


def _unmasked(member: Member, before: Member | None) -> Member:
    old = None if before is None else json_object(before.assistant)
    new = json_object(member.assistant)
    old_override = None if before is None else json_object(before.assistant_override)
    override = json_object(member.assistant_override)
    return msgspec.structs.replace(
        member,
        assistant=None if new is None else _restored(new, old),
        assistant_override=None if override is None else _restored(override, old_override),
    )


def _restored(given: JsonObject, stored: JsonObject | None) -> JsonObject:
    """A member's configuration with its masked keys the stored ones, where they go where
    they went (else 422)."""
    restored = restore_masked(given, stored)
    check_secrets_stay(given, restored, stored)
    return restored


def _parse_new(caller: Caller, body: object) -> Squad:
    new = parse(body, SquadCreate)
    return Squad(
        id=str(uuid.uuid4()),
        organization_id=caller.organization_id,
        name=new.name,
        members=_members(new.members, None),
    )


def _parse_update(_caller: Caller, squad: Squad, body: object) -> Squad:
    given = parse(body, SquadUpdate)
    members = squad.members
    if not isinstance(given.members, UnsetType):
        members = _members(given.members, squad)
    return dataclasses.replace(
        squad,
        name=squad.name if isinstance(given.name, UnsetType) else given.name,
        members=members,
        updated_at=utcnow(),
    )


async def _check(caller: Caller, squad: Squad) -> None:
    """Every saved assistant the members name is the organization's (422); each member's
    configuration resolves on this node (400, as a call placed with the squad would be)."""
    await check_saved_assistants(caller.store, caller.organization_id, squad.members)
    service = caller.service
    await check_member_configs(
        caller.store,
        caller.organization_id,
        squad.members,
        service.settings.speech,
        service.engine.egress_policy,
    )


def _update(tx: Transaction, squad: Squad, by: str | None) -> Awaitable[None]:
    return tx.update_squad(squad, by)


SQUADS: Resource[Squad] = oldest_first(
    path="/squads",
    noun="squad",
    serialize=SquadReply.of,
    lookup=lambda c, squad_id: c.store.get_squad(c.organization_id, squad_id),
    page=lambda c, query: c.store.list_squads(query),
    query=SquadListQuery,
    parse_new=_parse_new,
    parse_update=_parse_update,
    insert=lambda tx, s, by: tx.insert_squad(s, by),
    update=_update,
    delete=lambda tx, s: tx.delete_squad(s.organization_id, s.id),
    most=MAX_SQUADS_PER_ORGANIZATION,
    check=_check,
    refuse_delete=lambda c, s: refuse_while_squad_used(c.store, s.organization_id, s.id),
    unchanged=same_settings,
    audit=Audited("squad"),
)
RESOURCES = (SQUADS,)
mount(routes, *RESOURCES)
RecordVersions(
    resource=SQUADS,
    kind=VersionedKind.SQUAD,
    detail=SquadVersionDetail,
    record_field="squad",
    # The members' rules as they are now (a version was stored under those of its day).
    checked=lambda _c, s: dataclasses.replace(s, members=check_members(s.members)),
    update=_update,
    check=_check,
).mount(routes)

__all__ = ["RESOURCES", "SQUADS", "routes"]
