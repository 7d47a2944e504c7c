"""Squads as types: one call, several assistants handing it over.

A squad (``/squads``, its record ``domain/records.py`` ``Squad``) names its members; each
member is an assistant (a saved one, optionally with an override, or a configuration of its
own) with the members it may hand the call over to (``destinations``) and when (a description
the model reads). A call placed with a squad keeps its members as placed (``CallSquad``) and
starts with the first; the model hands the call over with the built-in ``handoff`` tool,
naming a destination, and the call goes on with that member's prompt, voice, settings and
tools, the conversation carried over.

Every size a tenant sets is bounded here (members, destinations, texts), so a squad's call
offers the model a bounded tool whatever the squad holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Literal, Protocol

import msgspec
from msgspec import Meta

from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.json import JsonValue
from voicedock.validation import NOT_BLANK_LINE_PATTERN, NOT_BLANK_PATTERN

# Tenant bounds.
MAX_MEMBERS = 10
MAX_DESTINATIONS = MAX_MEMBERS - 1
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 1000
MAX_MESSAGE_CHARS = 1000
MEMBER_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
# Handoffs one call may make unless the operator sets another bound ([calls] max_handoffs).
DEFAULT_MAX_HANDOFFS = 5
# The reason of an operator's handoff (``POST /calls/{id}/control``), in its ``handoff`` event.
OPERATOR_HANDOFF = "operator"

Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS, pattern=NOT_BLANK_LINE_PATTERN)]
MemberName = Annotated[
    str,
    Meta(
        pattern=MEMBER_NAME_PATTERN,
        description="The member's name in the squad (lower case letters, digits, - and _, "
        "starting with a letter): what the model names when it hands the call over.",
    ),
]

CarryOver = Annotated[
    Literal["history", "summary"],
    Meta(
        description="What the member's model is given of the call so far when the call is "
        'handed over to it: "history" (the default), every message; "summary", a short '
        "summary of it made by the call's model (the last messages when the model fails)."
    ),
]
HISTORY: CarryOver = "history"
SUMMARY: CarryOver = "summary"


class _Part(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A part of a squad as the tenant wrote it."""


class Destination(_Part, frozen=True):
    """A member the call may be handed over to, and when (``description``, read by the
    model); ``message``: what the new member says first, in its own voice (else its
    ``first_message``; neither: it answers the conversation as it stands)."""

    member: MemberName
    description: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_DESCRIPTION_CHARS,
            pattern=NOT_BLANK_PATTERN,
            description="When to hand the call over to this member (the model reads it).",
        ),
    ]
    message: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=MAX_MESSAGE_CHARS,
                pattern=NOT_BLANK_PATTERN,
                description="The transition the new member speaks first, in its own voice.",
            ),
        ]
        | None
    ) = None


class Member(_Part, frozen=True):
    """One assistant of a squad: a saved one (``assistant_id``, optionally with an
    ``assistant_override``) or a configuration of its own (``assistant``)."""

    name: MemberName
    assistant_id: str | None = None
    assistant_override: Mapping[str, object] | None = None
    assistant: Mapping[str, object] | None = None
    destinations: Annotated[list[Destination], Meta(max_length=MAX_DESTINATIONS)] = []
    carry_over: CarryOver = HISTORY


Members = Annotated[list[Member], Meta(min_length=1, max_length=MAX_MEMBERS)]


class CallMember(msgspec.Struct, kw_only=True, frozen=True):
    """A member as a call placed with its squad runs it: its assistant resolved when the call
    was placed (the snapshot a call keeps, as it keeps its assistant's)."""

    name: str
    assistant_id: str | None = None
    agent_name: str | None = None
    config: AssistantConfig = msgspec.field(default_factory=AssistantConfig)
    destinations: list[Destination] = msgspec.field(default_factory=list)
    carry_over: CarryOver = HISTORY


class CallSquad(msgspec.Struct, kw_only=True, frozen=True):
    """The squad a call runs: its members as placed (the first answers), at most
    ``max_handoffs`` handoffs in the call."""

    squad_id: str | None = None
    members: list[CallMember] = msgspec.field(default_factory=list)
    max_handoffs: int = DEFAULT_MAX_HANDOFFS
    version: int | None = None  # the stored squad's version it was placed with

    def member(self, name: str) -> CallMember | None:
        return next((m for m in self.members if m.name == name), None)


def member_named(members: list[Member], name: str) -> Member | None:
    return next((m for m in members if m.name == name), None)


class _Said(Protocol):
    @property
    def member(self) -> str | None: ...


def members_involved(squad: CallSquad, messages: Iterable[_Said]) -> list[CallMember]:
    """The members that had a call placed with ``squad``, in the order they first had it:
    the first member (it answers), then each one a message names."""
    involved = [squad.members[0]]
    for message in messages:
        member = None if message.member is None else squad.member(message.member)
        if member is not None and member not in involved:
            involved.append(member)
    return involved


def involved_json(squad: CallSquad | None, messages: Iterable[_Said]) -> list[JsonValue] | None:
    """``members`` of a call's record and end-of-call report (None: placed without a squad):
    each member involved by its name, saved assistant and that assistant's name."""
    if squad is None:
        return None
    return [
        {"member": m.name, "assistant_id": m.assistant_id, "agent_name": m.agent_name}
        for m in members_involved(squad, messages)
    ]


__all__ = [
    "DEFAULT_MAX_HANDOFFS",
    "HISTORY",
    "MAX_DESTINATIONS",
    "MAX_MEMBERS",
    "SUMMARY",
    "CallMember",
    "CallSquad",
    "CarryOver",
    "Destination",
    "Member",
    "MemberName",
    "Members",
    "Name",
    "involved_json",
    "member_named",
    "members_involved",
]
