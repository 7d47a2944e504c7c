"""Billing in SQL (both backends): rate card versions, spending limits and alerts, and the
costs of rated calls."""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime

import msgspec

from voicedock.domain.billing import CallCost, RateCard, RateCardTerms
from voicedock.store.protocols.billing import RatedCall, SpendLimit
from voicedock.store.sql.base import RowReads, StorePart, TransactionPart
from voicedock.store.sql.conn import SqlValue
from voicedock.store.sql.rows import RATE_CARDS, SPEND_LIMITS, integer, load_json, text


def _owned_by(organization_id: str | None) -> tuple[str, list[SqlValue]]:
    """The rate cards' condition (and its arguments) for the organization's own (None: the
    default card's)."""
    if organization_id is None:
        return "organization_id IS NULL", []
    return "organization_id = ?", [organization_id]


class _BillingLookups(RowReads):
    async def current_rate_card(self, organization_id: str) -> RateCard | None:
        for owner in (organization_id, None):
            where, args = _owned_by(owner)
            card = await self._one(
                RATE_CARDS,
                f"SELECT * FROM rate_cards WHERE {where} ORDER BY version DESC LIMIT 1",
                args,
                False,
            )
            if card is not None:
                return card
        return None

    async def get_spend_limit(self, organization_id: str) -> SpendLimit | None:
        return await self._by_key(SPEND_LIMITS, "organization_id", organization_id)

    async def rated_calls(
        self, organization_id: str, start: datetime, end: datetime
    ) -> list[RatedCall]:
        rows = await self._reads().fetch(
            "SELECT id, started_at, cost FROM calls WHERE organization_id = ? AND started_at >= ?"
            " AND started_at < ? AND cost IS NOT NULL ORDER BY started_at, id",
            organization_id,
            self._dialect.dt(start),
            self._dialect.dt(end),
        )
        rated = []
        for row in rows:
            started_at = self._dialect.from_dt(row["started_at"])
            assert started_at is not None
            cost = msgspec.convert(load_json(row["cost"]), CallCost)
            rated.append(RatedCall(text(row["id"]), started_at, cost))
        return rated


class SqlBillingWrites(TransactionPart, _BillingLookups):
    """Billing inside an open transaction."""

    async def add_rate_card(
        self, organization_id: str | None, card_id: str, terms: RateCardTerms, now: datetime
    ) -> RateCard:
        where, args = _owned_by(organization_id)
        row = await self._conn.fetchrow(
            f"SELECT max(version) AS v FROM rate_cards WHERE {where}", *args
        )
        last = None if row is None or row["v"] is None else integer(row["v"])
        card = RateCard(card_id, organization_id, (last or 0) + 1, terms, now)
        await self._insert(RATE_CARDS, card)
        return card

    async def set_spend_limit(self, limit: SpendLimit | None, organization_id: str) -> None:
        await self._conn.execute(
            "DELETE FROM spend_limits WHERE organization_id = ?", organization_id
        )
        if limit is not None:
            await self._insert(SPEND_LIMITS, limit)

    async def record_spend_alert(
        self, organization_id: str, month: str, threshold: int, now: datetime
    ) -> bool:
        row = await self._conn.fetchrow(
            "INSERT INTO spend_alerts (organization_id, month, threshold, sent_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING threshold",
            organization_id,
            month,
            threshold,
            self._dialect.dt(now),
        )
        return row is not None


class SqlBillingReads(StorePart, _BillingLookups):
    """Billing lookups."""

    async def rate_card_versions(self, organization_id: str | None) -> list[RateCard]:
        where, args = _owned_by(organization_id)
        rows = await self._reader.fetch(
            f"SELECT * FROM rate_cards WHERE {where} ORDER BY version", *args
        )
        return [RATE_CARDS.decode(r, self._dialect) for r in rows]


__all__ = ["SqlBillingReads", "SqlBillingWrites"]
