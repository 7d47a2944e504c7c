"""``GET /usage``: an organization's calls and speech use in a date range, aggregated by the
database (``store/sql/usage.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """``GET /usage``: an organization's calls created in ``[start, end)``, grouped."""

    organization_id: str
    start: datetime
    end: datetime
    group_by: str  # domain.usage.GROUP_BY
    include_tests: bool = False  # the test runs' calls too (``Call.test_run_id``)


@dataclass(frozen=True, slots=True)
class CallUsageRow:
    key: str | None  # the group: a UTC day (YYYY-MM-DD) or an id (None: calls without one)
    direction: str
    status: str
    end_reason: str | None
    calls: int
    connected_ms: int
    billable_seconds: int


@dataclass(frozen=True, slots=True)
class SpeechUsageRow:
    key: str | None
    kind: str  # "stt" | "tts"
    provider: str
    seconds: float
    characters: int


@dataclass(frozen=True, slots=True)
class MemberUsageRow:
    """A call placed with a squad grouped by assistant: the part one member had of it."""

    key: str | None  # the call's group: its assistant, the squad's first member's
    assistant_id: str | None  # the member's saved assistant (None: a configuration of its own)
    connected_ms: int


@dataclass(frozen=True, slots=True)
class CostUsageRow:
    """The rated calls of a group in one currency: their costs' sum in ten-thousandths (exact
    for every currency's minor unit)."""

    key: str | None
    currency: str
    ten_thousandths: int
    calls: int


@dataclass(frozen=True, slots=True)
class EvaluationUsageRow:
    """The calls of a group whose analysis gave one success evaluation."""

    key: str | None
    value: str
    calls: int


@dataclass(frozen=True, slots=True)
class UsageRows:
    calls: list[CallUsageRow]
    speech: list[SpeechUsageRow]
    members: list[MemberUsageRow] = field(default_factory=list)  # grouped by assistant only
    costs: list[CostUsageRow] = field(default_factory=list)
    evaluations: list[EvaluationUsageRow] = field(default_factory=list)


class UsageReads(Protocol):
    async def usage(self, query: UsageQuery) -> UsageRows:
        """Calls and speech use aggregated by group (``store/sql/usage.py``)."""
        ...


__all__ = [
    "CallUsageRow",
    "CostUsageRow",
    "EvaluationUsageRow",
    "MemberUsageRow",
    "SpeechUsageRow",
    "UsageQuery",
    "UsageReads",
    "UsageRows",
]
