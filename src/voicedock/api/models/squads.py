"""``/squads``: an organization's assistants that hand a call over to each other.

A member's parts are the domain's types (``domain/squads.py``: their bounds are there); what
no schema states (names unique, destinations among the members, each member's assistant
choice and configuration) is checked by ``calls/assistants/squads.py``, 400 naming the field.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.assistant_choice import SquadMember, SquadMembers
from voicedock.api.models.base import Body, Reply, of_record
from voicedock.api.models.calls import OldestFirstPageQuery, Pagination
from voicedock.api.models.field_types import Time
from voicedock.api.models.operations import Schema, owned_paths
from voicedock.domain.json import json_object
from voicedock.domain.records import Squad as SquadRecord
from voicedock.domain.secret_fields import masked
from voicedock.domain.squads import (
    Member,
    Name,
)

Members = SquadMembers


class SquadCreate(Body, kw_only=True):
    """A squad: its name (for people) and its members, the first one answering."""

    name: Name
    members: Members


class SquadUpdate(Body, kw_only=True):
    """The fields sent replace the squad's. Calls already placed keep the squad they were
    placed with."""

    name: Name | UnsetType = UNSET
    members: Members | UnsetType = UNSET


class Squad(Reply, kw_only=True):
    id: str
    name: str
    members: list[SquadMember]
    version: Annotated[
        int, Meta(ge=1, description="Its current version (GET /squads/{id}/versions)")
    ]
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, squad: SquadRecord) -> Squad:
        members = [_shown(m) for m in squad.members]
        return of_record(cls, squad, members=members)


def _shown(member: Member) -> SquadMember:
    """A member as answered: the secrets of its configurations masked."""
    built = msgspec.to_builtins(member)
    assert isinstance(built, dict)
    for key in ("assistant", "assistant_override"):
        config = json_object(built.get(key))
        if config is not None:
            built[key] = masked(config)
    return msgspec.convert({k: v for k, v in built.items() if v is not None}, SquadMember)


class SquadList(Reply, kw_only=True):
    squads: list[Squad]
    pagination: Pagination
    next_cursor: str | None = None


class SquadListQuery(OldestFirstPageQuery, kw_only=True):
    """``GET /squads``'s query: oldest first."""


PATHS: dict[str, Schema] = owned_paths(
    "/squads",
    a_record="a squad",
    reply=Squad,
    listing=SquadList,
    query=SquadListQuery,
    create=("Store a squad (assistants that hand a call over to each other)", SquadCreate),
    update=("Update a squad", SquadUpdate),
    names_records=True,
    held_while="a phone number or a campaign still calling uses it",
)
MODELS = (SquadMember, SquadCreate, SquadUpdate, Squad, SquadList, SquadListQuery)
