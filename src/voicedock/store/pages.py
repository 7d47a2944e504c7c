"""A page of an organization's records listed oldest first, by cursor: the query and the page
of every such list (squads, test suites); its SQL is ``store/sql/base.py``'s ``_oldest_first``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class OldestFirstQuery:
    """A page of an organization's records, oldest first; ``after``: the id of the record the
    previous page ended with (the opaque cursor), only records listed after it."""

    organization_id: str
    limit: int = 100
    offset: int = 0
    after: str | None = None


@dataclass(frozen=True, slots=True)
class RecordPage(Generic[R]):
    records: list[R]
    total: int  # the organization's records of the list


__all__ = ["OldestFirstQuery", "RecordPage"]
