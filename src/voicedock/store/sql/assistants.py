"""Assistants, tool templates and analysis templates in SQL (both backends)."""

from __future__ import annotations

from voicedock.domain.records import AnalysisTemplate, Assistant, ToolTemplate, utcnow
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.rows import ANALYSIS_TEMPLATES, ASSISTANTS, TOOL_TEMPLATES


class SqlAssistantWrites(TransactionPart):
    """Assistants and their templates inside an open transaction."""

    async def insert_assistant(self, assistant: Assistant) -> None:
        await self._insert(ASSISTANTS, assistant)

    async def update_assistant(self, assistant: Assistant) -> None:
        """Write every mutable field; ``updated_at`` is set to now (also on ``assistant``)."""
        assistant.updated_at = utcnow()
        columns = ("name", "config", "business_name", "active", "updated_at")
        await self._update(ASSISTANTS, assistant, columns, "assistant")

    async def delete_assistant(self, organization_id: str, assistant_id: str) -> bool:
        return await self._delete(ASSISTANTS, organization_id, assistant_id)

    async def insert_tool_template(self, template: ToolTemplate) -> None:
        await self._insert(TOOL_TEMPLATES, template)

    async def update_tool_template(self, template: ToolTemplate) -> None:
        template.updated_at = utcnow()
        await self._update(TOOL_TEMPLATES, template, ("tool", "updated_at"), "tool template")

    async def delete_tool_template(self, organization_id: str, template_id: str) -> bool:
        return await self._delete(TOOL_TEMPLATES, organization_id, template_id)

    async def insert_analysis_template(self, template: AnalysisTemplate) -> None:
        await self._insert(ANALYSIS_TEMPLATES, template)

    async def update_analysis_template(self, template: AnalysisTemplate) -> None:
        template.updated_at = utcnow()
        columns = ("name", "plan", "updated_at")
        await self._update(ANALYSIS_TEMPLATES, template, columns, "analysis template")

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
