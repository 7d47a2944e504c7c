"""The audit trail in SQL (both backends): appended, listed newest first; retention's delete
is in ``store/sql/retention.py``."""

from __future__ import annotations

from voicedock.domain.audit import AuditEvent
from voicedock.store.protocols.audit import AuditPage, AuditQuery
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.conn import SqlValue
from voicedock.store.sql.rows import AUDIT_EVENTS


class SqlAuditWrites(TransactionPart):
    """Audit events inside an open transaction (the change they record commits with them)."""

    async def insert_audit_event(self, event: AuditEvent) -> None:
        await self._insert(AUDIT_EVENTS, event)


class SqlAuditReads(StorePart):
    """The organization's audit events, by its filters."""

    async def list_audit_events(self, query: AuditQuery) -> AuditPage:
        where = ["organization_id = ?"]
        args: list[SqlValue] = [query.organization_id]
        for column, value in (
            ("actor", query.actor),
            ("action", query.action),
            ("resource_type", query.resource_type),
            ("resource_id", query.resource_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        self._created_within(where, args, query.created, inclusive=False)
        page = (query.after, query.limit, query.offset)
        events, total = await self._newest_first(AUDIT_EVENTS, where, args, page)
        return AuditPage(events, total)


__all__ = ["SqlAuditReads", "SqlAuditWrites"]
