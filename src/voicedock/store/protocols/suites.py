"""Test suites (``/test-suites``) and their runs (``POST /test-suites/{id}/runs``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from voicedock.domain.rehearsal import Suite, SuiteRun


@dataclass(frozen=True, slots=True)
class SuiteQuery:
    """A page of an organization's suites, oldest first; ``after``: the id of the suite the
    previous page ended with (the opaque cursor), only suites listed after it."""

    organization_id: str
    limit: int = 100
    offset: int = 0
    after: str | None = None


@dataclass(frozen=True, slots=True)
class SuitePage:
    suites: list[Suite]
    total: int  # the organization's suites


class SuiteWrites(Protocol):
    async def insert_suite(self, suite: Suite) -> None: ...
    async def update_suite(self, suite: Suite) -> None: ...
    async def delete_suite(self, organization_id: str, suite_id: str) -> bool: ...
    async def insert_suite_run(self, run: SuiteRun) -> None: ...
    async def update_suite_run(self, run: SuiteRun) -> None: ...


class SuiteReads(Protocol):
    async def get_suite(self, organization_id: str, suite_id: str) -> Suite | None: ...
    async def list_suites(self, query: SuiteQuery) -> SuitePage: ...
    async def get_suite_run(self, organization_id: str, run_id: str) -> SuiteRun | None: ...


__all__ = ["SuitePage", "SuiteQuery", "SuiteReads", "SuiteWrites"]
