"""The audit trail (``domain/audit.py``): events appended in the transaction of the change they
record, listed newest first by organization and filters; retention deletes the oldest
(``RetentionWrites``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from voicedock.domain.audit import AuditEvent
from voicedock.store.protocols.calls import CallCursor, TimeRange


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of ``GET /audit-events`` and ``voicedock audit``; ``after``: the decoded cursor
    (the last listed event's ``created_at`` and ``seq``)."""

    organization_id: str
    limit: int = 100
    offset: int = 0
    actor: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    created: TimeRange = field(default_factory=TimeRange)  # bounds excluded
    after: CallCursor | None = None  # newest first: only events listed after this one


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    total: int


class AuditWrites(Protocol):
    async def insert_audit_event(self, event: AuditEvent) -> None: ...


class AuditReads(Protocol):
    async def list_audit_events(self, query: AuditQuery) -> AuditPage: ...


__all__ = ["AuditPage", "AuditQuery", "AuditReads", "AuditWrites"]
