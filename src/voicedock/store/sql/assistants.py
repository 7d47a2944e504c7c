"""Assistants, tool templates and analysis templates in SQL (both backends)."""

from __future__ import annotations

import dataclasses

from voicedock.domain.record_versions import VersionedKind
from voicedock.domain.records import (
    AnalysisTemplate,
    Assistant,
    AssistantVersion,
    ToolTemplate,
    utcnow,
)
from voicedock.store.errors import StoreError
from voicedock.store.sql.base import StorePart
from voicedock.store.sql.record_versions import SqlVersionedWrites
from voicedock.store.sql.rows import (
    ANALYSIS_TEMPLATES,
    ASSISTANT_VERSIONS,
    ASSISTANTS,
    TOOL_TEMPLATES,
    integer,
)

# What a change or a publish writes of the assistant: what its calls run (and, stamped, its
# updated_at).
_LIVE_COLUMNS = ("name", "config", "business_name", "active", "version")


class SqlAssistantWrites(SqlVersionedWrites):
    """Assistants and their templates inside an open transaction."""

    async def insert_assistant(self, assistant: Assistant, by: str | None = None) -> None:
        """The new assistant and its first version (``by``: the API key that made it; None:
        the operator)."""
        assistant.version = 1
        await self._insert(ASSISTANTS, assistant)
        await self._insert(ASSISTANT_VERSIONS, AssistantVersion.of(assistant, by))

    async def update_assistant(self, assistant: Assistant, by: str | None = None) -> None:
        """Write every mutable field as the assistant's next version (its row locked, so
        that two changes at once are two versions); ``updated_at`` is set to now and
        ``version`` to the new one (also on ``assistant``)."""
        assistant.version = await self._next_version(assistant)
        await self._touched(ASSISTANTS, assistant, _LIVE_COLUMNS, "assistant")
        await self._insert(ASSISTANT_VERSIONS, AssistantVersion.of(assistant, by))

    async def insert_assistant_draft(
        self, assistant: Assistant, by: str | None = None
    ) -> AssistantVersion:
        """``assistant``'s settings as its next version, a draft: the assistant's row (what
        its calls run) stays as it is."""
        draft = dataclasses.replace(
            assistant, version=await self._next_version(assistant), updated_at=utcnow()
        )
        version = AssistantVersion.of(draft, by, draft=True)
        await self._insert(ASSISTANT_VERSIONS, version)
        return version

    async def publish_assistant_version(self, assistant: Assistant) -> None:
        """``assistant`` (a version's settings and number, ``AssistantVersion.restored``) live:
        written as the assistant's, the version marked published if it was a draft."""
        await self._by_id(ASSISTANTS, assistant.organization_id, assistant.id, locked=True)
        await self._touched(ASSISTANTS, assistant, _LIVE_COLUMNS, "assistant")
        await self._conn.execute(
            "UPDATE assistant_versions SET published_at = ?"
            " WHERE assistant_id = ? AND version = ? AND published_at IS NULL",
            self._dialect.dt(assistant.updated_at),
            assistant.id,
            assistant.version,
        )

    async def _next_version(self, assistant: Assistant) -> int:
        """The number of the assistant's next version, past its drafts (its row locked, so
        that two changes at once get two numbers)."""
        current = await self._by_id(
            ASSISTANTS, assistant.organization_id, assistant.id, locked=True
        )
        if current is None:
            raise StoreError("assistant to update does not exist")
        row = await self._conn.fetchrow(
            "SELECT max(version) AS n FROM assistant_versions WHERE assistant_id = ?",
            assistant.id,
        )
        latest = None if row is None or row["n"] is None else integer(row["n"])
        return max(current.version, latest or 0) + 1

    async def set_assistant_release(self, assistant: Assistant) -> None:
        """Write how the assistant's versions reach callers, its ``traffic_split`` and
        ``release_gate`` (no version: they change no setting)."""
        await self._update(ASSISTANTS, assistant, ("traffic_split", "release_gate"), "assistant")

    async def delete_assistant(self, organization_id: str, assistant_id: str) -> bool:
        return await self._delete(ASSISTANTS, organization_id, assistant_id)

    async def insert_tool_template(self, template: ToolTemplate, by: str | None = None) -> None:
        await self._insert_versioned(TOOL_TEMPLATES, template, by)

    async def update_tool_template(self, template: ToolTemplate, by: str | None = None) -> None:
        await self._update_versioned(TOOL_TEMPLATES, template, ("tool",), "tool template", by)

    async def delete_tool_template(self, organization_id: str, template_id: str) -> bool:
        kind = VersionedKind.TOOL_TEMPLATE
        return await self._delete_versioned(TOOL_TEMPLATES, kind, organization_id, template_id)

    async def insert_analysis_template(self, template: AnalysisTemplate) -> None:
        await self._insert(ANALYSIS_TEMPLATES, template)

    async def update_analysis_template(self, template: AnalysisTemplate) -> None:
        await self._touched(ANALYSIS_TEMPLATES, template, ("name", "plan"), "analysis template")

    async def delete_analysis_template(self, organization_id: str, template_id: str) -> bool:
        return await self._delete(ANALYSIS_TEMPLATES, organization_id, template_id)


class SqlAssistantReads(StorePart):
    """Assistant and template lookups."""

    async def get_assistant(
        self, organization_id: str | None, assistant_id: str
    ) -> Assistant | None:
        return await self._by_id(ASSISTANTS, organization_id, assistant_id)

    async def list_assistants(self, organization_id: str) -> list[Assistant]:
        return await self._of_organization(ASSISTANTS, organization_id)

    async def list_assistant_versions(
        self, organization_id: str, assistant_id: str
    ) -> list[AssistantVersion]:
        rows = await self._reader.fetch(
            "SELECT * FROM assistant_versions WHERE assistant_id = ? AND organization_id = ?"
            " ORDER BY version DESC",
            assistant_id,
            organization_id,
        )
        return [ASSISTANT_VERSIONS.decode(r, self._dialect) for r in rows]

    async def get_assistant_version(
        self, organization_id: str, assistant_id: str, version: int
    ) -> AssistantVersion | None:
        row = await self._reader.fetchrow(
            "SELECT * FROM assistant_versions"
            " WHERE assistant_id = ? AND organization_id = ? AND version = ?",
            assistant_id,
            organization_id,
            version,
        )
        return None if row is None else ASSISTANT_VERSIONS.decode(row, self._dialect)

    async def get_tool_template(
        self, organization_id: str, template_id: str
    ) -> ToolTemplate | None:
        return await self._by_id(TOOL_TEMPLATES, organization_id, template_id)

    async def list_tool_templates(self, organization_id: str) -> list[ToolTemplate]:
        return await self._of_organization(TOOL_TEMPLATES, organization_id)

    async def get_analysis_template(
        self, organization_id: str, template_id: str
    ) -> AnalysisTemplate | None:
        return await self._by_id(ANALYSIS_TEMPLATES, organization_id, template_id)

    async def list_analysis_templates(self, organization_id: str) -> list[AnalysisTemplate]:
        return await self._of_organization(ANALYSIS_TEMPLATES, organization_id)


__all__ = ["SqlAssistantReads", "SqlAssistantWrites"]
