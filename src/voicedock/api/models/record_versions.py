"""``/squads/{id}/versions`` and ``/tool-templates/{id}/versions``, ``.../rollback``: every
change to a squad or a tool template is a version of it, kept as it was (as an assistant's,
docs/assistant-versions.md); what a version changed of the one before, setting by setting (a
squad's ``name`` and ``members``, each field of a template's tool), as the record's answer
shows them (secrets masked); a rollback makes a version's settings the record's again, as its
next version. The shapes are the assistants' versions' (``assistant_versions.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

from voicedock.api.models.base import Body, Reply
from voicedock.api.models.field_types import Time
from voicedock.api.models.operations import Schema, operation, path_parameter
from voicedock.api.models.squads import Squad
from voicedock.api.models.tools import ToolTemplate
from voicedock.domain.record_versions import RecordVersion
from voicedock.domain.timestamps import iso

# A version's number: 1 when the record was created, one more with each change (the column's
# bound: PostgreSQL's INTEGER).
VERSION_MAX = 2**31 - 1
VersionNumber = Annotated[int, Meta(ge=1, le=VERSION_MAX)]


def version_number(text: str) -> int | None:
    """A version's number as a path names it (digits, within the column's bound); None: no
    version can have it."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= VERSION_MAX:
        return None
    return int(text)


# What a record's answer shows that is no setting of it.
_RECORD_FIELDS = frozenset({"id", "version", "created_at", "updated_at"})


class VersionChange(Reply, kw_only=True):
    """One setting a version changed: its value before and after (null: not set); secrets
    masked, as the record's answer masks them."""

    setting: str
    before: Any = None
    after: Any = None


class VersionSummary(Reply, kw_only=True):
    """A version of a squad or a tool template."""

    version: int
    created_at: Time
    created_by: str | None = None  # the API key that made the change (null: the operator)
    published_at: Time = None  # when it went live: when it was made (no drafts of these)
    changed: list[str]  # the settings that differ from the version before (the first: all set)


class VersionList(Reply, kw_only=True):
    versions: list[VersionSummary]  # newest first


class SquadVersionDetail(VersionSummary, kw_only=True):
    changes: list[VersionChange]
    squad: Squad  # as it was in this version


class ToolTemplateVersionDetail(VersionSummary, kw_only=True):
    changes: list[VersionChange]
    tool_template: ToolTemplate  # as it was in this version


class VersionRollback(Body, kw_only=True):
    """The version whose settings become the record's again, as its next version."""

    version: VersionNumber


def _settings(shown: msgspec.Struct) -> dict[str, object]:
    """A record's answer's settings (its id, version and times out), null ones out."""
    built = msgspec.to_builtins(shown)
    assert isinstance(built, dict)
    return {k: v for k, v in built.items() if k not in _RECORD_FIELDS and v is not None}


def version_changes(
    shown: msgspec.Struct, shown_before: msgspec.Struct | None
) -> list[VersionChange]:
    """What a version (its record as answered then: ``shown``) changed of the one before
    (None: it is the first), setting by setting, in the answer's order."""
    now = _settings(shown)
    then = {} if shown_before is None else _settings(shown_before)
    keys = [*now, *(k for k in then if k not in now)]
    return [
        VersionChange(setting=key, before=then.get(key), after=now.get(key))
        for key in keys
        if now.get(key) != then.get(key)
    ]


def _summary(version: RecordVersion, changes: list[VersionChange]) -> dict[str, object]:
    return {
        "version": version.version,
        "created_at": iso(version.created_at),
        "created_by": version.created_by,
        "published_at": iso(version.created_at),
        "changed": [change.setting for change in changes],
    }


def version_summary(
    version: RecordVersion, shown: msgspec.Struct, shown_before: msgspec.Struct | None
) -> VersionSummary:
    """``version`` in a list: ``shown``, its record as answered then, and the one before's."""
    fields = _summary(version, version_changes(shown, shown_before))
    return msgspec.convert(fields, VersionSummary)


D = TypeVar("D", bound=VersionSummary)


def version_detail(
    model: type[D],
    record_field: str,
    version: RecordVersion,
    shown: msgspec.Struct,
    shown_before: msgspec.Struct | None,
) -> D:
    """``version`` with what it changed and its record as it was (``shown``, the ``model``'s
    ``record_field``)."""
    changes = version_changes(shown, shown_before)
    built: Mapping[str, object] = {
        **_summary(version, changes),
        "changes": msgspec.to_builtins(changes),
        record_field: msgspec.to_builtins(shown),
    }
    return msgspec.convert(built, model)


_VERSION_PARAMETER = path_parameter(
    "version", {"type": "integer", "minimum": 1, "maximum": VERSION_MAX}
)


def version_paths(
    path: str, a_record: str, detail: type[msgspec.Struct], reply: type[msgspec.Struct]
) -> dict[str, Schema]:
    """The versions of the records at ``path`` (``a_record``: "a squad"): listed, one read,
    a rollback."""
    return {
        f"{path}/{{id}}/versions": {
            "get": operation(
                f"List {a_record}'s versions, newest first", ("200", VersionList), errors="401 404"
            ),
        },
        f"{path}/{{id}}/versions/{{version}}": {
            "get": operation(
                f"Get a version of {a_record}: its settings then and what it changed",
                ("200", detail),
                params=[_VERSION_PARAMETER],
                errors="401 404",
            ),
        },
        f"{path}/{{id}}/rollback": {
            "post": operation(
                f"Make a version's settings {a_record}'s again, as its next version",
                ("200", reply),
                body=VersionRollback,
                errors="400 401 403 404 413 422",
            ),
        },
    }


PATHS: dict[str, Schema] = {
    **version_paths("/squads", "a squad", SquadVersionDetail, Squad),
    **version_paths("/tool-templates", "a tool template", ToolTemplateVersionDetail, ToolTemplate),
}
MODELS = (
    VersionChange,
    VersionSummary,
    VersionList,
    SquadVersionDetail,
    ToolTemplateVersionDetail,
    VersionRollback,
)
