"""Billing on both backends: rate card versions (an organization's, else the default), the
spending limit, spending alerts once per month and threshold, and the costs of rated calls."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from voicedock.domain.billing import CallCost, Rate, RateCardTerms
from voicedock.domain.records import CallStatus
from voicedock.store import Store
from voicedock.store.protocols.billing import SpendLimit

from .builders import BASE_TIME, insert_call, make_call, seed_org

pytestmark = pytest.mark.unit

TERMS = RateCardTerms(currency="EUR", rates=[Rate(per_minute="0.02")])


def _cost(amount: str) -> CallCost:
    return CallCost(
        amount=amount,
        currency="EUR",
        billed_seconds=60,
        rate_card_id="rc_1",
        rate_card_version=1,
        direction="outbound",
        country="DE",
        number_type="mobile",
        per_minute="0.02",
    )


async def test_rate_cards_are_versioned_and_the_organizations_own_wins(store: Store) -> None:
    org = await seed_org(store, "Acme")
    other = await seed_org(store, "Other")
    assert await store.current_rate_card(org.id) is None
    async with store.transaction() as tx:
        default = await tx.add_rate_card(None, "rc_d1", TERMS, BASE_TIME)
    assert default.version == 1
    assert await store.current_rate_card(org.id) == default
    dearer = msgspec.structs.replace(TERMS, rates=[Rate(per_minute="0.05")])
    async with store.transaction() as tx:
        own1 = await tx.add_rate_card(org.id, "rc_o1", TERMS, BASE_TIME)
        own2 = await tx.add_rate_card(org.id, "rc_o2", dearer, BASE_TIME + timedelta(seconds=1))
    assert (own1.version, own2.version) == (1, 2)
    current = await store.current_rate_card(org.id)
    assert current == own2
    assert current is not None
    assert current.terms.rates[0].per_minute == "0.05"
    assert await store.current_rate_card(other.id) == default
    assert [c.id for c in await store.rate_card_versions(org.id)] == ["rc_o1", "rc_o2"]
    assert [c.id for c in await store.rate_card_versions(None)] == ["rc_d1"]


async def test_spend_limits_and_alerts_once_per_month_and_threshold(store: Store) -> None:
    org = await seed_org(store)
    limit = SpendLimit(org.id, "50.00", 80, BASE_TIME)
    async with store.transaction() as tx:
        await tx.set_spend_limit(limit, org.id)
    assert await store.get_spend_limit(org.id) == limit
    async with store.transaction() as tx:
        assert await tx.record_spend_alert(org.id, "2025-03", 80, BASE_TIME)
        assert not await tx.record_spend_alert(org.id, "2025-03", 80, BASE_TIME)
        assert await tx.record_spend_alert(org.id, "2025-03", 100, BASE_TIME)
        assert await tx.record_spend_alert(org.id, "2025-04", 80, BASE_TIME)
        await tx.set_spend_limit(None, org.id)
    assert await store.get_spend_limit(org.id) is None


async def test_rated_calls_of_a_month_in_the_order_answered(store: Store) -> None:
    org = await seed_org(store)
    for n, (amount, offset) in enumerate((("0.10", 20), ("0.25", 10), (None, 5))):
        call = make_call(org.id, status=CallStatus.ENDED)
        call.id = f"call_{n}"
        call.started_at = BASE_TIME + timedelta(seconds=offset)
        call.ended_at = call.started_at + timedelta(seconds=60)
        call.cost = None if amount is None else _cost(amount)
        await insert_call(store, call)
    rated = await store.rated_calls(org.id, BASE_TIME, BASE_TIME + timedelta(days=1))
    assert [(r.call_id, r.cost.amount) for r in rated] == [("call_1", "0.25"), ("call_0", "0.10")]
    assert (
        await store.rated_calls(
            org.id, BASE_TIME + timedelta(days=1), BASE_TIME + timedelta(days=2)
        )
        == []
    )
    stored = await store.get_call(org.id, "call_1")
    assert stored is not None
    assert stored.cost == _cost("0.25")
