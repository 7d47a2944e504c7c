"""The versions of a squad or a tool template over REST, written once for both kinds
(``RecordVersions``, mounted by ``api/routes/squads.py`` and ``api/routes/tool_templates.py``):
``GET {path}/{id}/versions`` (newest first, each with the settings it changed),
``GET {path}/{id}/versions/{version}`` (the record as it was, and what it changed) and
``POST {path}/{id}/rollback`` (a version's settings the record's again, as its next version,
checked as a PATCH is and audited as one). The shapes are the assistants' versions'
(``api/routes/assistant_versions.py``, docs/assistant-versions.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic

import msgspec
from aiohttp import web

from voicedock.api.body import read_json
from voicedock.api.models.base import parse, reply
from voicedock.api.models.record_versions import (
    VersionList,
    VersionRollback,
    VersionSummary,
    version_detail,
    version_number,
    version_summary,
)
from voicedock.api.resources import Caller, KeyedWrite, Resource, caller_of, stored_by
from voicedock.domain.record_versions import RecordVersion, Versioned, VersionedKind, restored
from voicedock.errors import NotFound


@dataclass(frozen=True, kw_only=True)
class RecordVersions(Generic[Versioned]):
    """The versions of ``resource``'s records (of ``kind``): ``detail`` is the model of one
    version, whose ``record_field`` is the record as it was; a rollback's record is checked by
    ``checked`` (what a PATCH's body passes: the record it stores) and ``check`` (what a PATCH
    passes before it is stored), then written by ``update`` as the record's next version."""

    resource: Resource[Versioned]
    kind: VersionedKind
    detail: type[VersionSummary]  # SquadVersionDetail, ToolTemplateVersionDetail
    record_field: str
    checked: Callable[[Caller, Versioned], Versioned]
    update: KeyedWrite[Versioned]
    check: Callable[[Caller, Versioned], Awaitable[None]] | None = None

    def mount(self, routes: web.RouteTableDef) -> None:
        item = self.resource.item_path
        routes.get(f"{item}/versions")(self._list)
        routes.get(f"{item}/versions/{{version}}")(self._get)
        routes.post(f"{item}/rollback")(self._rollback)

    def _shown(self, version: RecordVersion, now: Versioned) -> msgspec.Struct:
        """The record ``now`` is, as ``version`` left it, as its answer showed it then."""
        as_it_was = dataclasses.replace(restored(version, now), updated_at=version.created_at)
        return self.resource.one(as_it_was)

    async def _list(self, request: web.Request) -> web.Response:
        """The record's versions, newest first, each with the settings it changed."""
        caller = caller_of(request)
        record = await self.resource.fetch(request)
        versions = await caller.store.list_record_versions(
            self.kind, caller.organization_id, record.id
        )
        shown: list[msgspec.Struct] = [self._shown(v, record) for v in versions]
        before: list[msgspec.Struct | None] = [*shown[1:], None]
        summaries = [
            version_summary(v, s, b) for v, s, b in zip(versions, shown, before, strict=True)
        ]
        return reply(VersionList(versions=summaries))

    async def _get(self, request: web.Request) -> web.Response:
        """One version: the record as it was, and what it changed of the version before."""
        caller = caller_of(request)
        record = await self.resource.fetch(request)
        number = version_number(request.match_info["version"])
        version = await self._version(caller, record, number)
        before = await self._version_or_none(caller, record, version.version - 1)
        shown_before = None if before is None else self._shown(before, record)
        detail = version_detail(
            self.detail, self.record_field, version, self._shown(version, record), shown_before
        )
        return reply(detail)

    async def _rollback(self, request: web.Request) -> web.Response:
        """The version's settings as the record's next version, checked as a PATCH is; 404 for
        a version it never had."""
        caller = caller_of(request).auditing(self.resource.audit, "updated")
        record = await self.resource.fetch(request)
        body = await read_json(request, caller.service.settings.server.max_body_bytes)
        asked = parse(body, VersionRollback)
        version = await self._version(caller, record, asked.version)
        # What the rules, the operator's policy or the organization refuse now is refused, as
        # a PATCH would be.
        back = self.checked(caller, restored(version, record))
        if self.check is not None:
            await self.check(caller, back)
        return reply(self.resource.one(await stored_by(self.update)(caller, back)))

    async def _version(
        self, caller: Caller, record: Versioned, number: int | None
    ) -> RecordVersion:
        """The record's version ``number`` (None: a path naming none); 404 otherwise."""
        if number is None:
            raise self._not_found()
        version = await self._version_or_none(caller, record, number)
        if version is None:
            raise self._not_found()
        return version

    async def _version_or_none(
        self, caller: Caller, record: Versioned, number: int
    ) -> RecordVersion | None:
        if number < 1:
            return None
        return await caller.store.get_record_version(
            self.kind, record.organization_id, record.id, number
        )

    def _not_found(self) -> NotFound:
        """``404 Squad version not found``, ``404 Tool template version not found``."""
        resource = self.resource
        return NotFound(
            f"the {resource.noun} has no such version",
            error=f"{resource.title.removesuffix(' not found')} version not found",
        )


__all__ = ["RecordVersions"]
