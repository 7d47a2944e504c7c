"""Retention in SQL (both backends, ``organizations/retention.py``): each is one statement over at
most ``limit`` rows, so several nodes may run it at once; run again until it returns less than
``limit``. A call counts once it ended (or failed) before the cutoff: a live call never
matches, nor a webhook delivery still pending."""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime

from voicedock.store.sql.base import TransactionPart
from voicedock.store.sql.rows import TERMINAL_IN

# Calls that ended (or failed) before the bound cutoff; a live call never matches.
_ENDED_BEFORE = f"c.status IN {TERMINAL_IN} AND COALESCE(c.ended_at, c.updated_at) < ?"


class SqlRetentionWrites(TransactionPart):
    """Retention's deletes inside an open transaction."""

    async def _before(self, statement: str, cutoff: datetime, limit: int) -> int:
        """Run one of retention's statements, ``cutoff`` and ``limit`` bound in that order."""
        return await self._conn.execute(statement, self._dialect.dt(cutoff), limit)

    async def delete_calls_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete calls that ended before ``cutoff`` (their messages and events go with them)."""
        return await self._before(
            "DELETE FROM calls WHERE id IN "
            f"(SELECT c.id FROM calls c WHERE {_ENDED_BEFORE} ORDER BY c.seq LIMIT ?)",
            cutoff,
            limit,
        )

    async def delete_transcripts_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete the transcript (messages and transcript events) of calls that ended before
        ``cutoff``; how many rows went."""
        messages = await self._before(
            "DELETE FROM call_messages WHERE seq IN (SELECT m.seq FROM call_messages m "
            f"JOIN calls c ON c.id = m.call_id WHERE {_ENDED_BEFORE} LIMIT ?)",
            cutoff,
            limit,
        )
        if messages:
            return messages
        return await self._before(
            "DELETE FROM call_events WHERE seq IN (SELECT e.seq FROM call_events e "
            f"JOIN calls c ON c.id = e.call_id WHERE e.type = 'transcript' AND {_ENDED_BEFORE} "
            "LIMIT ?)",
            cutoff,
            limit,
        )

    async def clear_analysis_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Blank the summary and analysis of calls that ended before ``cutoff``."""
        return await self._before(
            "UPDATE calls SET summary = NULL, analysis_result = NULL WHERE id IN "
            f"(SELECT c.id FROM calls c WHERE {_ENDED_BEFORE} "
            "AND (c.summary IS NOT NULL OR c.analysis_result IS NOT NULL) LIMIT ?)",
            cutoff,
            limit,
        )

    async def delete_finished_deliveries_before(self, cutoff: datetime, limit: int) -> int:
        """Retention: delete up to ``limit`` deliveries created before ``cutoff`` that were
        delivered or given up (their payloads hold transcripts); pending ones stay."""
        return await self._before(
            "DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox "
            "WHERE (delivered_at IS NOT NULL OR gave_up_at IS NOT NULL) AND created_at < ? "
            "LIMIT ?)",
            cutoff,
            limit,
        )

    async def delete_audit_events_before(self, cutoff: datetime, limit: int) -> int:
        """Retention: delete up to ``limit`` audit events created before ``cutoff``, oldest
        first (the trail is never otherwise changed)."""
        return await self._before(
            "DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events "
            "WHERE created_at < ? ORDER BY seq LIMIT ?)",
            cutoff,
            limit,
        )


__all__ = ["SqlRetentionWrites"]
