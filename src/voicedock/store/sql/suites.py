"""Test suites and their runs in SQL (both backends)."""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime

from voicedock.domain.rehearsal import Suite, SuiteRun
from voicedock.store.pages import OldestFirstQuery, RecordPage
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.rows import SUITE_RUNS, SUITES, integer

_RUN_COLUMNS = ("status", "results", "error", "started_at", "ended_at")
_OPEN = "status IN ('queued', 'running')"  # a run waiting or running


class SqlSuiteWrites(TransactionPart):
    """Suites and runs inside an open transaction."""

    async def insert_suite(self, suite: Suite) -> None:
        await self._insert(SUITES, suite)

    async def update_suite(self, suite: Suite) -> None:
        await self._touched(SUITES, suite, ("name", "scenarios", "assistant_id"), "test suite")

    async def delete_suite(self, organization_id: str, suite_id: str) -> bool:
        await self._conn.execute(
            "DELETE FROM test_runs WHERE suite_id = ? AND organization_id = ?",
            suite_id,
            organization_id,
        )
        return await self._delete(SUITES, organization_id, suite_id)

    async def insert_suite_run(self, run: SuiteRun) -> None:
        await self._insert(SUITE_RUNS, run)

    async def update_suite_run(self, run: SuiteRun) -> None:
        await self._update(SUITE_RUNS, run, _RUN_COLUMNS, "test run")

    async def count_open_suite_runs(self, organization_id: str, since: datetime) -> int:
        """The organization's runs waiting or running, asked for since ``since`` (any node)."""
        row = await self._conn.fetchrow(
            f"SELECT count(*) AS n FROM test_runs WHERE organization_id = ? AND {_OPEN}"
            " AND created_at >= ?",
            organization_id,
            self._dialect.dt(since),
        )
        return 0 if row is None else integer(row["n"])

    async def delete_finished_suite_runs_beyond(
        self, organization_id: str, keep: int, limit: int
    ) -> int:
        """Delete up to ``limit`` of the organization's finished runs beyond its ``keep``
        newest, oldest first; waiting and running ones stay."""
        return await self._conn.execute(
            "DELETE FROM test_runs WHERE id IN (SELECT id FROM test_runs"
            f" WHERE organization_id = ? AND NOT {_OPEN}"
            " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?)",
            organization_id,
            limit,
            keep,
        )

    async def delete_finished_suite_runs_before(self, cutoff: datetime, limit: int) -> int:
        """Retention: delete up to ``limit`` finished runs asked for before ``cutoff``."""
        return await self._conn.execute(
            f"DELETE FROM test_runs WHERE id IN (SELECT id FROM test_runs WHERE NOT {_OPEN}"
            " AND created_at < ? ORDER BY created_at LIMIT ?)",
            self._dialect.dt(cutoff),
            limit,
        )


class SqlSuiteReads(StorePart):
    """Suite and run lookups."""

    async def get_suite(self, organization_id: str, suite_id: str) -> Suite | None:
        return await self._by_id(SUITES, organization_id, suite_id)

    async def list_suites(self, query: OldestFirstQuery) -> RecordPage[Suite]:
        return await self._oldest_first(SUITES, query)

    async def get_suite_run(self, organization_id: str, run_id: str) -> SuiteRun | None:
        return await self._by_id(SUITE_RUNS, organization_id, run_id)

    async def latest_suite_run_of_version(
        self, organization_id: str, suite_id: str, assistant_id: str, version: int
    ) -> SuiteRun | None:
        """The newest run of the suite that named this version of the assistant."""
        row = await self._reader.fetchrow(
            "SELECT * FROM test_runs WHERE organization_id = ? AND suite_id = ?"
            " AND assistant_id = ? AND assistant_version = ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            organization_id,
            suite_id,
            assistant_id,
            version,
        )
        return None if row is None else SUITE_RUNS.decode(row, self._dialect)


__all__ = ["SqlSuiteReads", "SqlSuiteWrites"]
