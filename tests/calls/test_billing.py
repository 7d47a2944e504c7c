"""A call rated as it is reported: once, by the card its organization had, its cost stored with
it; priced again from its record and the card version its cost names, it costs the same after
the card changed; a spending threshold announced once per month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fakes.memory_store import MemoryStore
from fakes.world import ACME, org_id
from voicedock.domain.billing import SpendAlert, rate
from voicedock.domain.records import Call, CallStatus, Direction
from voicedock.organizations.billing import CallRating, call_use, set_rate_card, set_spend_limit
from voicedock.store.base import Transaction

pytestmark = pytest.mark.unit

ANSWERED = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
CARD = {
    "currency": "EUR",
    "increment": "30/6",
    "ai_fee_per_minute": "0.05",
    "speech": {"stt_per_minute": "0.01", "tts_per_thousand_characters": "0.02"},
    "rates": [{"per_minute": "0.02"}, {"country": "DE", "per_minute": "0.09"}],
}


class Alerts:
    def __init__(self) -> None:
        self.sent: list[SpendAlert] = []

    async def spend_alert(self, tx: Transaction, alert: SpendAlert) -> None:
        self.sent.append(alert)


def _call(n: int, seconds: float = 61.5, answered: bool = True) -> Call:
    return Call(
        id=f"call-{n}",
        organization_id=org_id(ACME),
        direction=Direction.OUTBOUND,
        status=CallStatus.ENDED,
        caller_phone="+4915123456789",
        assistant_phone="+31850835037",
        started_at=ANSWERED if answered else None,
        ended_at=ANSWERED + timedelta(seconds=seconds),
        speech_usage=[
            {"kind": "stt", "provider": "offline", "seconds": 12.0},
            {"kind": "tts", "provider": "offline", "characters": 900},
        ],
    )


async def _rated(store: MemoryStore, rating: CallRating, call: Call) -> Call:
    async with store.transaction() as tx:
        await tx.insert_call(call)
        return await rating.rated(tx, call)


async def test_a_call_is_rated_once_and_priced_again_from_its_record(store: MemoryStore) -> None:
    rating = CallRating()
    assert (await _rated(store, rating, _call(1))).cost is None  # no card: no cost
    await set_rate_card(store, ACME, CARD, ANSWERED)
    rated = await _rated(store, rating, _call(2))
    cost = rated.cost
    assert cost is not None
    # 66 s billed: 1.1 min x (0.09 + 0.05) = 0.154; STT 0.2 min x 0.01 = 0.002;
    # TTS 0.9 x 0.02 = 0.018: 0.174 -> 0.17
    assert (cost.amount, cost.billed_seconds, cost.per_minute) == ("0.17", 66, "0.09")
    stored = await store.get_call(None, "call-2")
    assert stored is not None
    assert stored.cost == cost

    dearer = {**CARD, "rates": [{"per_minute": "1.00"}]}
    await set_rate_card(store, ACME, dearer, ANSWERED)
    async with store.transaction() as tx:
        assert (await rating.rated(tx, stored)).cost == cost  # rated once
    versions = await store.rate_card_versions(org_id(ACME))
    assert [v.version for v in versions] == [1, 2]
    card = next(v for v in versions if v.id == cost.rate_card_id)
    assert rate(card, call_use(stored)) == cost  # the same record, the same version
    # the new version: 1.1 min x (1.00 + 0.05) + 0.002 + 0.018 = 1.175 -> 1.18
    assert (await _rated(store, rating, _call(3))).cost.amount == "1.18"  # type: ignore[union-attr]
    unanswered = await _rated(store, rating, _call(4, answered=False))
    assert unanswered.cost is None


async def test_spending_thresholds_are_announced_once_per_month(store: MemoryStore) -> None:
    alerts = Alerts()
    rating = CallRating(alerts)
    await set_rate_card(store, ACME, CARD, ANSWERED)
    await set_spend_limit(store, ACME, "0.50", 60, ANSWERED)
    for n in range(1, 5):  # 0.17 each: 0.34 (68 %), 0.51 (102 %), then nothing new
        await _rated(store, rating, _call(n))
    assert [(a.threshold, a.spent, a.limit, a.month) for a in alerts.sent] == [
        (60, "0.34", "0.50", "2026-11"),
        (100, "0.51", "0.50", "2026-11"),
    ]
