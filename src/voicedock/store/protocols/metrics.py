"""What the metrics (``metrics.py``) read from the database at scrape time: every node's calls
and the webhook deliveries, counted by state; the caller numbers' health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from voicedock.domain.records import PhoneNumber


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """What the metrics read from the database at scrape time (every node's calls)."""

    # (direction, status, end_reason or "") -> calls (test suites' test calls left out)
    calls: dict[tuple[str, str, str], int]
    # (trunk or "", pbx or "", node or "") -> calls not yet ended (test calls too: they hold
    # the PBX's channels and the node's speech)
    active_calls: dict[tuple[str, str, str], int]
    # "pending" | "delivered" | "failed" (given up) -> webhook deliveries in the outbox
    webhook_deliveries: dict[str, int]
    # every organization's caller numbers, with their health (calls/outbound/number_health.py)
    numbers: list[PhoneNumber] = field(default_factory=list)


class MetricsReads(Protocol):
    async def metrics_counts(self) -> StoreCounts: ...


__all__ = ["MetricsReads", "StoreCounts"]
