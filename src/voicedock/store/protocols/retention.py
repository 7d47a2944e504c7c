"""Retention (``organizations/retention.py``): what ended long enough ago is deleted or blanked, one
statement over at most ``limit`` rows each; never a live call nor a pending delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class RetentionWrites(Protocol):
    async def delete_calls_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete calls that ended before ``cutoff``, with their messages and events."""
        ...

    async def delete_transcripts_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete messages, then transcript events, of calls that ended before ``cutoff``."""
        ...

    async def clear_analysis_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Blank the summary and analysis of calls that ended before ``cutoff``."""
        ...

    async def delete_finished_deliveries_before(self, cutoff: datetime, limit: int) -> int:
        """Delete webhook deliveries created before ``cutoff`` that were delivered or given
        up (their payloads carry transcripts); pending ones stay."""
        ...

    async def delete_audit_events_before(self, cutoff: datetime, limit: int) -> int:
        """Delete audit events created before ``cutoff``, oldest first."""
        ...


__all__ = ["RetentionWrites"]
