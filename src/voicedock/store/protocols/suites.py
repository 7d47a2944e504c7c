"""Test suites (``/test-suites``) and their runs (``POST /test-suites/{id}/runs``)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from voicedock.domain.rehearsal import Suite, SuiteRun
from voicedock.store.pages import OldestFirstQuery, RecordPage


class SuiteWrites(Protocol):
    async def insert_suite(self, suite: Suite) -> None: ...
    async def update_suite(self, suite: Suite) -> None: ...
    async def delete_suite(self, organization_id: str, suite_id: str) -> bool: ...
    async def insert_suite_run(self, run: SuiteRun) -> None: ...
    async def update_suite_run(self, run: SuiteRun) -> None: ...
    async def count_open_suite_runs(self, organization_id: str, since: datetime) -> int:
        """The organization's runs waiting or running, asked for since ``since`` (any node;
        after ``lock_organization``, no other transaction adds one meanwhile)."""
        ...

    async def delete_finished_suite_runs_beyond(
        self, organization_id: str, keep: int, limit: int
    ) -> int:
        """Delete up to ``limit`` of the organization's finished runs beyond its ``keep``
        newest, oldest first."""
        ...

    async def delete_finished_suite_runs_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` finished runs asked for before ``cutoff``."""
        ...


class SuiteReads(Protocol):
    async def get_suite(self, organization_id: str, suite_id: str) -> Suite | None: ...
    async def list_suites(self, query: OldestFirstQuery) -> RecordPage[Suite]: ...
    async def get_suite_run(self, organization_id: str, run_id: str) -> SuiteRun | None: ...
    async def latest_suite_run_of_version(
        self, organization_id: str, suite_id: str, assistant_id: str, version: int
    ) -> SuiteRun | None: ...  # the newest run that named the version


__all__ = ["SuiteReads", "SuiteWrites"]
