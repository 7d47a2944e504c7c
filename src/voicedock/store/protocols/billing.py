"""Billing: the operator's rate cards (each change a new version), an organization's monthly
spending limit, the spending thresholds already announced, and the costs of rated calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from voicedock.domain.billing import CallCost, RateCard, RateCardTerms


@dataclass(frozen=True, slots=True)
class SpendLimit:
    """An organization's monthly spending limit (the operator's): new calls are refused once
    the month's costs reach ``monthly_spend``; a webhook warns at ``warning_percent`` of it
    (None: no warning but the limit's)."""

    organization_id: str
    monthly_spend: str  # a decimal string, in the currency of the organization's rate card
    warning_percent: int | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RatedCall:
    """A rated call as a statement reads it: its id, when it was answered and its cost."""

    call_id: str
    started_at: datetime
    cost: CallCost


class BillingLookups(Protocol):
    """What rating and the spending limit read, in a transaction or outside one."""

    async def current_rate_card(self, organization_id: str) -> RateCard | None:
        """The newest version of the organization's own card, else of the default card."""
        ...

    async def get_spend_limit(self, organization_id: str) -> SpendLimit | None: ...

    async def rated_calls(
        self, organization_id: str, start: datetime, end: datetime
    ) -> list[RatedCall]:
        """The organization's calls with a cost answered in ``[start, end)``, in the order
        they were answered (test runs' calls are never rated)."""
        ...


class BillingWrites(BillingLookups, Protocol):
    async def add_rate_card(
        self, organization_id: str | None, card_id: str, terms: RateCardTerms, now: datetime
    ) -> RateCard:
        """Store ``terms`` (checked) as the next version of the organization's card (None:
        the default card); versions are never changed."""
        ...

    async def set_spend_limit(self, limit: SpendLimit | None, organization_id: str) -> None:
        """Set the organization's limit (None: no limit)."""
        ...

    async def record_spend_alert(
        self, organization_id: str, month: str, threshold: int, now: datetime
    ) -> bool:
        """Whether the month's alert at ``threshold`` percent is new (then it is recorded):
        one per organization, month and threshold, on every node."""
        ...


class BillingReads(BillingLookups, Protocol):
    async def rate_card_versions(self, organization_id: str | None) -> list[RateCard]:
        """Every version of the organization's card (None: the default's), oldest first."""
        ...


__all__ = ["BillingLookups", "BillingReads", "BillingWrites", "RatedCall", "SpendLimit"]
