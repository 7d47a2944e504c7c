"""The counts the metrics read at scrape time in SQL (both backends): every node's calls by
outcome, the calls not yet ended by trunk, PBX and node, the webhook deliveries by state, and
the caller numbers with their health."""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from voicedock.store.base import StoreCounts
from voicedock.store.sql.base import StorePart
from voicedock.store.sql.rows import ACTIVE_IN, PHONE_NUMBERS, integer, optional_text, text


class SqlMetricsReads(StorePart):
    """The metrics' counts."""

    async def metrics_counts(self) -> StoreCounts:
        calls = await self._reader.fetch(
            "SELECT direction, status, end_reason, count(*) AS n FROM calls"
            " WHERE test_run_id IS NULL GROUP BY direction, status, end_reason"
        )
        active = await self._reader.fetch(
            "SELECT p.trunk AS trunk, c.pbx AS pbx, c.owner_node AS node, count(*) AS n"
            " FROM calls c LEFT JOIN phone_numbers p ON p.id = c.number_id"
            f" WHERE c.status IN {ACTIVE_IN} GROUP BY p.trunk, c.pbx, c.owner_node"
        )
        deliveries = await self._reader.fetch(
            "SELECT CASE WHEN delivered_at IS NOT NULL THEN 'delivered'"
            " WHEN gave_up_at IS NOT NULL THEN 'failed' ELSE 'pending' END AS state,"
            " count(*) AS n FROM webhook_outbox GROUP BY 1"
        )
        return StoreCounts(
            calls={
                (
                    text(r["direction"]),
                    text(r["status"]),
                    optional_text(r["end_reason"]) or "",
                ): integer(r["n"])
                for r in calls
            },
            active_calls={
                (
                    optional_text(r["trunk"]) or "",
                    optional_text(r["pbx"]) or "",
                    optional_text(r["node"]) or "",
                ): integer(r["n"])
                for r in active
            },
            webhook_deliveries={text(r["state"]): integer(r["n"]) for r in deliveries},
            numbers=[
                PHONE_NUMBERS.decode(r, self._dialect)
                for r in await self._reader.fetch("SELECT * FROM phone_numbers ORDER BY id")
            ],
        )


__all__ = ["SqlMetricsReads"]
