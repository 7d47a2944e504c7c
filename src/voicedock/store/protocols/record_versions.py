"""Versions of squads and tool templates (``domain/record_versions.py``): made by their
writes (``insert_squad``, ``update_tool_template``, ...), read here."""

from __future__ import annotations

from typing import Protocol

from voicedock.domain.record_versions import RecordVersion, VersionedKind


class RecordVersionReads(Protocol):
    async def list_record_versions(
        self, kind: VersionedKind, organization_id: str, record_id: str
    ) -> list[RecordVersion]: ...  # newest first
    async def get_record_version(
        self, kind: VersionedKind, organization_id: str, record_id: str, version: int
    ) -> RecordVersion | None: ...


__all__ = ["RecordVersionReads"]
