"""Versions of squads and tool templates (docs/assistant-versions.md, "Squads and tool
templates"): every change to one is a version of it, kept as it was, its settings as JSON
(a squad's name and members, a template's tool), so that a rollback makes them the record's
again as its next version. An assistant's versions are its own (``AssistantVersion``)."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import msgspec

from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.domain.records import Squad, ToolTemplate, utcnow
from voicedock.domain.squads import Member


class VersionedKind(enum.StrEnum):
    """What a version is a version of."""

    SQUAD = "squad"
    TOOL_TEMPLATE = "tool_template"


Versioned = TypeVar("Versioned", Squad, ToolTemplate)


@dataclass(slots=True)
class RecordVersion:
    """A squad or a tool template as one change left it, never changed after."""

    kind: VersionedKind
    record_id: str
    organization_id: str
    version: int
    body: dict[str, JsonValue]  # its settings (``settings_of``)
    created_by: str | None  # the API key that made the change (None: the operator)
    created_at: datetime = field(default_factory=utcnow)

    @classmethod
    def of(cls, record: Squad | ToolTemplate, by: str | None) -> RecordVersion:
        """``record`` as its version ``record.version``, made by ``by`` when it was updated."""
        return cls(
            kind=kind_of(record),
            record_id=record.id,
            organization_id=record.organization_id,
            version=record.version,
            body=settings_of(record),
            created_by=by,
            created_at=record.updated_at,
        )


class _SquadSettings(msgspec.Struct, kw_only=True):
    name: str
    members: list[Member]


def kind_of(record: Squad | ToolTemplate) -> VersionedKind:
    return VersionedKind.SQUAD if isinstance(record, Squad) else VersionedKind.TOOL_TEMPLATE


def settings_of(record: Squad | ToolTemplate) -> JsonObject:
    """What a change to ``record`` changes, as JSON: a squad's name and members, a template's
    tool."""
    if isinstance(record, Squad):
        members = msgspec.to_builtins(record.members)
        return {"name": record.name, "members": members}
    return {"tool": record.tool}


def same_settings(record: Versioned, other: Versioned) -> bool:
    """Whether ``other`` sets what ``record`` sets (a change to it would make a version
    changing nothing)."""
    return settings_of(record) == settings_of(other)


def restored(version: RecordVersion, onto: Versioned) -> Versioned:
    """``onto`` (the record now) with ``version``'s settings and number."""
    if isinstance(onto, Squad):
        squad = msgspec.convert(version.body, _SquadSettings)
        return dataclasses.replace(
            onto, name=squad.name, members=squad.members, version=version.version
        )
    tool = json_object(version.body.get("tool"))
    if tool is None:
        raise ValueError("a tool template's version holds no tool")
    return dataclasses.replace(onto, tool=tool, version=version.version)


__all__ = [
    "RecordVersion",
    "Versioned",
    "VersionedKind",
    "kind_of",
    "restored",
    "same_settings",
    "settings_of",
]
