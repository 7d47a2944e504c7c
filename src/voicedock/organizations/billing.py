"""Billing on the call's side (docs/billing.md): the operator's rate cards set, a call rated
once when its end-of-call report goes out, an organization's month of costs, and its monthly
spending limit, which refuses new outbound calls once the month's costs reach it.

Rating reads only what the call's record keeps (its direction, the far party's number, the
answer and the end, the speech it used) and the rate card version stored with the cost, so
the same record and card give the same cost again (``domain/billing.py`` ``rate``).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from voicedock.domain.billing import (
    CallUse,
    RateCard,
    RateCardError,
    SpendAlert,
    decimal,
    month_bounds,
    month_of,
    parse_terms,
    rate,
)
from voicedock.domain.ids import mask_call_id
from voicedock.domain.json import JsonValue
from voicedock.domain.records import Call
from voicedock.domain.usage import STT, TTS, connected_ms
from voicedock.organizations.config_mirror import ensure_organization
from voicedock.store.base import Store, Transaction
from voicedock.store.protocols.billing import BillingLookups, SpendLimit

log = logging.getLogger("voicedock.calls")

MAX_WARNING_PERCENT = 99
LIMIT_REACHED = 100  # the threshold the limit itself is, in percent
SPEND_LIMIT_REACHED = "spend-limit-reached"  # a scheduled call's end_reason, a contact's outcome


class BillingRefused(ValueError):
    """The operator's billing request cannot be done; the message says why."""


async def set_rate_card(
    store: Store, organization: str | None, document: object, now: datetime
) -> RateCard:
    """Store ``document`` (a rate card's decoded file) as the next version of
    ``organization``'s card (None: the default card); the organization is created if needed."""
    try:
        terms = parse_terms(document)
    except RateCardError as exc:
        raise BillingRefused(f"rate card: {exc}") from None
    org_id = None if organization is None else (await ensure_organization(store, organization)).id
    async with store.transaction() as tx:
        return await tx.add_rate_card(org_id, f"rc_{uuid.uuid4().hex}", terms, now)


async def set_spend_limit(
    store: Store,
    organization: str,
    monthly_spend: str | None,
    warning_percent: int | None,
    now: datetime,
) -> SpendLimit | None:
    """Set ``organization``'s monthly spending limit (None: none) and the percent of it a
    webhook warns at (None: only at the limit)."""
    if monthly_spend is not None:
        try:
            decimal(monthly_spend, "--monthly-spend")
        except RateCardError as exc:
            raise BillingRefused(str(exc)) from None
    if warning_percent is not None and not 1 <= warning_percent <= MAX_WARNING_PERCENT:
        raise BillingRefused(
            f"the spending warning is a percent of the limit: 1-{MAX_WARNING_PERCENT}"
        )
    org = await ensure_organization(store, organization)
    limit = (
        None if monthly_spend is None else SpendLimit(org.id, monthly_spend, warning_percent, now)
    )
    async with store.transaction() as tx:
        await tx.set_spend_limit(limit, org.id)
    return limit


def call_use(call: Call) -> CallUse:
    """What rating reads of a call's record."""
    entries = call.speech_usage or []
    stt = sum(_number(e.get("seconds")) for e in entries if e.get("kind") == STT)
    tts = sum(_number(e.get("characters")) for e in entries if e.get("kind") == TTS)
    return CallUse(
        direction=call.direction.value,
        far_number=call.caller_phone,
        connected_ms=connected_ms(call.started_at, call.ended_at),
        stt_seconds=stt,
        tts_characters=int(tts),
    )


def _number(value: JsonValue) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


class SpendAlerts(Protocol):
    """Who announces an organization's spending thresholds (the webhooks), in the
    transaction that rated the call that reached them."""

    async def spend_alert(self, tx: Transaction, alert: SpendAlert) -> None: ...


class CallRating:
    """Rates each call once, in the transaction that sends its end-of-call report: an
    answered call of an organization with a rate card (its own, else the default) gets its
    ``cost``, stored with it before the report's observers see it; a spending threshold its
    cost reached this month is announced to ``alerts`` once per month and threshold."""

    def __init__(self, alerts: SpendAlerts | None = None) -> None:
        self._alerts = alerts

    async def rated(self, tx: Transaction, call: Call) -> Call:
        if call.cost is not None or call.started_at is None or call.test_run_id is not None:
            return call
        card = await tx.current_rate_card(call.organization_id)
        if card is None:
            return call
        cost = rate(card, call_use(call))
        priced = dataclasses.replace(call, cost=cost)
        await tx.update_call(priced)
        log.info(
            "call %s rated %s %s (rate card version %d)",
            mask_call_id(call.id),
            cost.amount,
            cost.currency,
            card.version,
        )
        await self._announce(tx, priced)
        return priced

    async def _announce(self, tx: Transaction, call: Call) -> None:
        if self._alerts is None or await tx.get_spend_limit(call.organization_id) is None:
            return
        # The organization's calls rated at once on several nodes take turns: each sees the
        # costs the others stored, so a threshold their sum crosses is announced.
        await tx.lock_organization(call.organization_id)
        now = call.started_at or call.updated_at
        spend = await month_spend(tx, call.organization_id, now)
        if spend is None:
            return
        for threshold in spend.thresholds_crossed():
            if await tx.record_spend_alert(call.organization_id, spend.month, threshold, now):
                alert = SpendAlert(
                    organization_id=call.organization_id,
                    month=spend.month,
                    threshold=threshold,
                    spent=str(spend.spent),
                    limit=spend.limit.monthly_spend,
                    currency=spend.currency,
                    at=call.ended_at or now,
                )
                await self._alerts.spend_alert(tx, alert)


@dataclass(frozen=True, slots=True)
class MonthSpend:
    """An organization's costs in a month, in its current card's currency, and its limit."""

    month: str
    currency: str
    spent: Decimal
    limit: SpendLimit

    @property
    def limit_amount(self) -> Decimal:
        return decimal(self.limit.monthly_spend, "monthly_spend")

    def percent(self) -> Decimal:
        amount = self.limit_amount
        return Decimal(LIMIT_REACHED) if amount == 0 else self.spent * 100 / amount

    @property
    def reached(self) -> bool:
        return self.spent >= self.limit_amount

    def thresholds_crossed(self) -> list[int]:
        """The thresholds (percent) this month's spending reached: the warning, the limit."""
        percent = self.percent()
        marks = [self.limit.warning_percent, LIMIT_REACHED]
        return [m for m in marks if m is not None and percent >= m]


async def month_spend(
    lookups: BillingLookups, organization_id: str, now: datetime
) -> MonthSpend | None:
    """The organization's spending this month (UTC) against its limit (None: no limit)."""
    limit = await lookups.get_spend_limit(organization_id)
    if limit is None:
        return None
    card = await lookups.current_rate_card(organization_id)
    month = month_of(now)
    start, end = month_bounds(month)
    rated = await lookups.rated_calls(organization_id, start, end)
    currency = card.terms.currency if card is not None else None
    if currency is None and rated:
        currency = rated[-1].cost.currency
    spent = sum((Decimal(r.cost.amount) for r in rated if r.cost.currency == currency), Decimal(0))
    return MonthSpend(month, currency or "", spent, limit)


async def spend_refusal(lookups: BillingLookups, organization_id: str, now: datetime) -> str | None:
    """Why the organization may place no new call now (its month's costs reached its
    spending limit), or ``None``: it may."""
    spend = await month_spend(lookups, organization_id, now)
    if spend is None or not spend.reached:
        return None
    return (
        f"the organization's monthly spending limit ({spend.limit.monthly_spend} "
        f"{spend.currency}) is reached for {spend.month}: {spend.spent} {spend.currency} spent; "
        "new calls are refused until the month ends or the operator raises the limit"
    )


__all__ = [
    "LIMIT_REACHED",
    "SPEND_LIMIT_REACHED",
    "BillingRefused",
    "CallRating",
    "MonthSpend",
    "SpendAlerts",
    "call_use",
    "month_spend",
    "set_rate_card",
    "set_spend_limit",
    "spend_refusal",
]
