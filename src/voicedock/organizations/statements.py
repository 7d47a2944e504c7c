"""An organization's statement of a month (``GET /billing/statements``): its rated calls per
UTC day and destination (direction, country, number type) and the totals, each the sum of
the calls' stored costs (never priced again), per currency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from voicedock.domain.billing import month_bounds
from voicedock.store.base import Store
from voicedock.store.protocols.billing import RatedCall


@dataclass(frozen=True, slots=True)
class StatementTotal:
    """The sums of rated calls in one currency: the statement's total in that currency."""

    currency: str
    calls: int
    billed_seconds: int
    billed_minutes: str
    amount: str


@dataclass(frozen=True, slots=True)
class StatementLine(StatementTotal):
    """The sums of the calls of one UTC day to one destination (direction, country, number
    type)."""

    day: str  # YYYY-MM-DD (UTC), the day the calls were answered
    direction: str
    country: str
    number_type: str


@dataclass(frozen=True, slots=True)
class MonthStatement:
    organization: str
    month: str
    lines: list[StatementLine]
    totals: list[StatementTotal]
    spending_limit: str | None


def minutes(seconds: int) -> str:
    """Billed seconds as minutes, 2 decimals (half-up)."""
    return str((Decimal(seconds) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def lines_of(rated: Sequence[RatedCall]) -> tuple[list[StatementLine], list[StatementTotal]]:
    """The statement's lines (by day, then destination) and totals (by currency)."""
    groups: dict[tuple[str, str, str, str, str], list[RatedCall]] = {}
    for call in rated:
        cost = call.cost
        key = (
            call.started_at.date().isoformat(),
            cost.direction,
            cost.country,
            cost.number_type,
            cost.currency,
        )
        groups.setdefault(key, []).append(call)
    lines = [
        StatementLine(currency, *_sums(calls), day, direction, country, number_type)
        for (day, direction, country, number_type, currency), calls in sorted(groups.items())
    ]
    currencies = sorted({c.cost.currency for c in rated})
    totals = [
        StatementTotal(currency, *_sums([c for c in rated if c.cost.currency == currency]))
        for currency in currencies
    ]
    return lines, totals


def _sums(calls: Sequence[RatedCall]) -> tuple[int, int, str, str]:
    seconds = sum(c.cost.billed_seconds for c in calls)
    amount = sum((Decimal(c.cost.amount) for c in calls), Decimal(0))
    return len(calls), seconds, minutes(seconds), str(amount)


async def month_statement(store: Store, organization_id: str, month: str) -> MonthStatement:
    """The organization's statement of ``month`` (YYYY-MM, UTC)."""
    start, end = month_bounds(month)
    org = await store.get_organization(organization_id)
    name = "" if org is None else (org.display_name or org.name)
    lines, totals = lines_of(await store.rated_calls(organization_id, start, end))
    limit = await store.get_spend_limit(organization_id)
    return MonthStatement(
        name, month, lines, totals, None if limit is None else limit.monthly_spend
    )


__all__ = ["MonthStatement", "StatementLine", "StatementTotal", "lines_of", "month_statement"]
