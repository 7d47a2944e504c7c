"""``/squads`` (an organization's assistants that hand a call over to each other: create, list
by cursor, get, patch, delete). The members' rules are ``calls/assistants/squads.py``'s."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web
from msgspec import UnsetType

from voicedock.api.models.base import parse, parse_query
from voicedock.api.models.squads import Squad as SquadReply
from voicedock.api.models.squads import SquadCreate, SquadListQuery, SquadMember, SquadUpdate
from voicedock.api.resources import (
    Caller,
    Create,
    Delete,
    Listed,
    Page,
    Paged,
    Patch,
    Resource,
    capped,
    created,
    mount,
    stored,
)
from voicedock.calls.assistants.squads import check_members, check_saved_assistants
from voicedock.domain.json import json_object
from voicedock.domain.records import Squad, utcnow
from voicedock.domain.secret_fields import restore_masked
from voicedock.domain.squads import Member
from voicedock.store.base import SquadQuery, Transaction

routes = web.RouteTableDef()

MAX_SQUADS_PER_ORGANIZATION = 200


def _members(given: list[SquadMember], before: Squad | None) -> list[Member]:
    """The members sent, as stored: a masked secret sent back is the stored one (the stored
    member of the same name's)."""
    members = [_member(m) for m in given]
    if before is not None:
        members = [_unmasked(m, before.member(m.name)) for m in members]
    return check_members(members)


def _member(given: SquadMember) -> Member:
    """A member as sent (its configurations any JSON yet: ``check_members`` reads them)."""
    return Member(
        name=given.name,
        assistant_id=None if isinstance(given.assistant_id, UnsetType) else given.assistant_id,
        assistant=None if isinstance(given.assistant, UnsetType) else given.assistant,
        assistant_override=(
            None if isinstance(given.assistant_override, UnsetType) else given.assistant_override
        ),
        destinations=given.destinations,
    )


def _unmasked(member: Member, before: Member | None) -> Member:
    old = None if before is None else json_object(before.assistant)
    new = json_object(member.assistant)
    old_override = None if before is None else json_object(before.assistant_override)
    override = json_object(member.assistant_override)
    return msgspec.structs.replace(
        member,
        assistant=None if new is None else restore_masked(new, old),
        assistant_override=None if override is None else restore_masked(override, old_override),
    )


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


async def _count(caller: Caller) -> int:
    return (await caller.store.list_squads(SquadQuery(caller.organization_id, limit=1))).total


async def _list(caller: Caller, page: Page) -> Listed[Squad]:
    query = parse_query(page.query, SquadListQuery)
    after = None if isinstance(query.cursor, UnsetType) else query.cursor or None
    found = await caller.store.list_squads(
        SquadQuery(caller.organization_id, page.limit, page.offset, after=after)
    )
    return Listed(found.squads, found.total)


def _checked(
    write: Callable[[Caller, Squad], Awaitable[Squad]],
) -> Callable[[Caller, Squad], Awaitable[Squad]]:
    """``write``, once every saved assistant the members name is the organization's (422)."""

    async def run(caller: Caller, squad: Squad) -> Squad:
        await check_saved_assistants(caller.store, caller.organization_id, squad.members)
        return await write(caller, squad)

    return run


def _insert(tx: Transaction, squad: Squad) -> Awaitable[None]:
    return tx.insert_squad(squad)


SQUADS: Resource[Squad] = Resource(
    path="/squads",
    noun="squad",
    lookup=lambda c, squad_id: c.store.get_squad(c.organization_id, squad_id),
    serialize=SquadReply.of,
    list=Paged(run=_list, params=frozenset({"cursor"}), cursor=lambda squad: squad.id),
    create=Create(
        parse=_parse_new,
        run=_checked(capped(_count, MAX_SQUADS_PER_ORGANIZATION, "squads", _insert)),
        reply=created(SquadReply.of),
    ),
    patch=Patch(parse=_parse_update, run=_checked(stored(lambda tx, s: tx.update_squad(s)))),
    delete=Delete(run=stored(lambda tx, s: tx.delete_squad(s.organization_id, s.id))),
)
RESOURCES = (SQUADS,)
mount(routes, *RESOURCES)

__all__ = ["RESOURCES", "SQUADS", "routes"]
