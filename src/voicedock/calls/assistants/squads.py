"""Squads' members as a configuration: what no schema states of them, checked when a squad is
stored (``/squads``).

Each member's name is its own in the squad; a destination names another member of it; each
member chooses its assistant as a call does (a saved one, optionally with an override, or a
configuration of its own: ``check_assistant_choice``), and a saved one must exist (422
naming the member otherwise).
"""

from __future__ import annotations

import msgspec

from voicedock.calls.assistants.config import check_assistant_choice
from voicedock.domain.squads import Member
from voicedock.errors import BadRequest, Unprocessable
from voicedock.store.base import Store


def check_members(members: list[Member]) -> list[Member]:
    """The members as stored: each assistant choice checked (a configuration without its
    nulls); 400 naming the member's field otherwise."""
    names = [m.name for m in members]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise BadRequest(f"members[{index}].name: another member is named {name!r}")
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
            raise BadRequest(f"{there}: a member does not hand the call over to itself")
        if destination.member not in names:
            raise BadRequest(f"{there}: the squad has no member {destination.member!r}")
        if destination.member in seen:
            raise BadRequest(f"{there}: named by another destination already")
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
        if member.assistant_id is None:
            continue
        if await store.get_assistant(organization_id, member.assistant_id) is None:
            raise Unprocessable(
                f"members[{index}].assistant_id: no assistant with this id",
                error="Unknown assistant",
            )
