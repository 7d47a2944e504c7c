"""How a request names its assistant (``/calls/outbound``, ``/campaigns``, ``/squads``, a
test run): a saved one (``assistant_id``), optionally with an override, a configuration of its
own, or a squad; the configurations read by their models (``models/assistants.py``: every
bound the document states, decoded once), what they mean checked after
(``calls/assistants/config.py``).

A configuration its model refuses is refused in the words of that check where the check refuses
it too (the messages clients know: ``keypad.timeout_seconds must be a number of seconds,
0.5-30.0``), in msgspec's otherwise (``assistant.redaction_plan.custom_patterns: expected
`array`, got `null```)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar

from msgspec import UNSET, Meta, UnsetType, field

from voicedock.api.models import assistants
from voicedock.api.models.base import Body, sent
from voicedock.api.models.field_types import AssistantId
from voicedock.api.models.operations import Schema
from voicedock.api.models.refusals import Reader, refusal
from voicedock.calls import json_readers
from voicedock.calls.assistants.config import check_config
from voicedock.domain.json import JsonObject
from voicedock.domain.squads import (
    HISTORY,
    MAX_DESTINATIONS,
    MAX_MEMBERS,
    CarryOver,
    Destination,
    Member,
    MemberName,
)
from voicedock.errors import BadRequest

if TYPE_CHECKING:  # models made from the table of settings (models/assistants.py)
    ConfigModel = Body
    OverrideModel = Body
else:
    ConfigModel = assistants.AssistantConfig
    OverrideModel = assistants.AssistantOverride


def worded(name: str, *, member: bool = False) -> Reader:
    """The refusal of a configuration sent as ``name`` (``assistant``, ``assistant_override``),
    as ``check_config`` words it; null: never left open (the field's own name). ``member``: a
    squad's member's, named from the squad (``members[0].assistant.keypad...``)."""

    def read(value: object, where: str) -> None:
        if value is None:
            raise BadRequest(f"{where} must not be null")
        try:
            check_config(json_readers.require_object(value, name), name, allow_profile=True)
        except BadRequest as exc:
            if not member:
                raise
            squad = where.removesuffix(f".{name}")
            message = exc.message
            if not message.startswith("assistant"):  # a field of the configuration alone
                message = f"{name}.{message}"
            raise BadRequest(f"{squad}.{message}", error=exc.error) from None

    return read


AssistantConfig = Annotated[ConfigModel, refusal(reader=worded("assistant"), unknown=True)]
AssistantOverride = Annotated[
    OverrideModel, refusal(reader=worded("assistant_override"), unknown=True)
]
_DEPRECATED = Meta(extra_json_schema={"deprecated": True})
DeprecatedConfig = Annotated[
    ConfigModel, _DEPRECATED, refusal(reader=worded("assistant"), unknown=True)
]
DeprecatedOverride = Annotated[
    OverrideModel, _DEPRECATED, refusal(reader=worded("assistant_override"), unknown=True)
]


def config_json(value: Body | UnsetType) -> JsonObject | UnsetType:
    """A decoded configuration as the JSON of what was sent (``sent``), for the check of what
    it means."""
    return value if isinstance(value, UnsetType) else sent(value)


def _present(names: tuple[str, ...]) -> Schema:
    return {"anyOf": [{"required": [name]} for name in names]}


def assistant_choice(
    saved: tuple[str, ...],
    transient: tuple[str, ...],
    override: tuple[str, ...],
    squad: tuple[str, ...] = (),
) -> Schema:
    """The rules of a body that names its assistant (calls/outbound/request.py): a saved one
    (``saved``, e.g. assistant_id), a ``transient`` configuration or a ``squad``, one of them;
    an ``override`` only with a saved one; of a name and its deprecated alias, only one; of a
    saved squad and an inline one, only one."""
    rules: list[Schema] = [
        {"not": {"required": list(names)}}
        for names in (saved, transient, override, squad)
        if len(names) > 1
    ]
    rules.append({"oneOf": [_present(names) for names in (saved, transient, squad) if names]})
    rules.append({"anyOf": [{"not": _present(override)}, _present(saved)]})
    return {"allOf": rules}


class SquadMember(Body, kw_only=True):
    """One assistant of the squad: a saved one (``assistant_id``, optionally with an
    ``assistant_override``) or a configuration of its own (``assistant``); the members it
    may hand the call over to (``destinations``). The first member answers the call."""

    SCHEMA: ClassVar[Schema] = assistant_choice(
        ("assistant_id",), ("assistant",), ("assistant_override",)
    )

    name: MemberName
    assistant_id: AssistantId | UnsetType = UNSET
    assistant_override: (
        Annotated[
            OverrideModel,
            refusal(reader=worded("assistant_override", member=True), unknown=True),
        ]
        | UnsetType
    ) = UNSET
    assistant: (
        Annotated[ConfigModel, refusal(reader=worded("assistant", member=True), unknown=True)]
        | UnsetType
    ) = UNSET
    destinations: Annotated[list[Destination], Meta(max_length=MAX_DESTINATIONS)] = field(
        default_factory=list
    )
    carry_over: CarryOver = HISTORY

    def member(self) -> Member:
        """The member as sent, its configurations as the JSON of what was sent (what they
        mean is checked next: ``check_members``)."""
        return Member(
            name=self.name,
            assistant_id=None if isinstance(self.assistant_id, UnsetType) else self.assistant_id,
            assistant=_or_none(config_json(self.assistant)),
            assistant_override=_or_none(config_json(self.assistant_override)),
            destinations=self.destinations,
            carry_over=self.carry_over,
        )


def _or_none(value: JsonObject | UnsetType) -> JsonObject | None:
    return None if isinstance(value, UnsetType) else value


SquadMembers = Annotated[list[SquadMember], Meta(min_length=1, max_length=MAX_MEMBERS)]
