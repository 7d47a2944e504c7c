"""Dial admission's rules over a transaction stub: which limit refuses, for how long, and which
locks and counts are taken (the counts themselves, across nodes: api/test_campaigns_api.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from voicedock.calls.outbound.dial_pacing import (
    BUSY_RETRY,
    CPS_WINDOW,
    ON_ITS_WAY,
    admit_dial,
    cps_wait,
)
from voicedock.domain.records import Trunk
from voicedock.store.base import Transaction

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Tx:
    """The dial queries of a transaction, answering from fixed counts and logging each ask."""

    def __init__(self, trunk: Trunk | None, active: dict[str, int], dials: list[Any]) -> None:
        self.trunk, self.active, self.dials = trunk, active, dials
        self.asked: list[str] = []

    async def trunk_for_update(self, trunk: str) -> Trunk | None:
        self.asked.append("lock trunk")
        return self.trunk

    async def lock_organization(self, organization_id: str) -> None:
        self.asked.append("lock organization")

    async def count_active_calls(self, by: str, value: str) -> int:
        self.asked.append(f"count {by}")
        return self.active.get(by, 0)

    async def trunk_dials(self, trunk: str, admitted_after: datetime, done_after: datetime) -> Any:
        self.asked.append("dials")
        return self.dials

    async def record_trunk_dial(self, trunk: str, now: datetime, forget_before: datetime) -> int:
        self.asked.append("record")
        return 7


async def admit(tx: Tx, organization_max: int = 0, campaign_max: int = 0) -> int | timedelta:
    return await admit_dial(
        cast(Transaction, tx), "carrier", "org-1", organization_max, "camp-1", campaign_max, NOW
    )


async def test_an_unlimited_trunk_admits_at_once_without_counting() -> None:
    tx = Tx(Trunk("carrier", "carrier"), {}, [])
    assert await admit(tx) == 7
    assert tx.asked == ["lock trunk", "record"]


async def test_a_full_trunk_refuses_before_the_organization_is_locked() -> None:
    tx = Tx(Trunk("carrier", "carrier", max_channels=2), {"trunk": 2}, [])
    assert await admit(tx, organization_max=5) == BUSY_RETRY
    assert tx.asked == ["lock trunk", "count trunk"]


async def test_the_organization_and_the_campaign_limits_refuse_in_turn() -> None:
    trunk = Trunk("carrier", "carrier", max_channels=9)
    at_organization_max = Tx(trunk, {"trunk": 1, "organization_id": 3}, [])
    assert await admit(at_organization_max, organization_max=3, campaign_max=1) == BUSY_RETRY
    assert at_organization_max.asked[-2:] == ["lock organization", "count organization_id"]
    at_campaign_max = Tx(trunk, {"campaign_id": 1}, [])
    assert await admit(at_campaign_max, organization_max=3, campaign_max=1) == BUSY_RETRY
    assert at_campaign_max.asked[-1] == "count campaign_id"
    assert await admit(Tx(trunk, {"campaign_id": 1}, []), campaign_max=2) == 7


async def test_a_full_second_waits_until_its_oldest_dial_ages_out() -> None:
    trunk = Trunk("carrier", "carrier", max_cps=2)
    done = [NOW - timedelta(milliseconds=300), NOW - timedelta(milliseconds=800)]
    assert await admit(Tx(trunk, {}, done)) == NOW - timedelta(milliseconds=800) + CPS_WINDOW - NOW
    assert await admit(Tx(trunk, {}, done[:1])) == 7


def test_cps_wait() -> None:
    assert cps_wait([], 1, NOW) is None
    assert cps_wait([None, None], 2, NOW) == ON_ITS_WAY  # all on their way: nothing to age
    # One on its way never ages out: both done ones must, the later one last.
    on_its_way_and_done = [None, NOW - timedelta(milliseconds=500), NOW]
    assert cps_wait(on_its_way_and_done, 2, NOW) == CPS_WINDOW
    assert cps_wait(on_its_way_and_done, 3, NOW) == timedelta(milliseconds=550)
    long_gone = [NOW - timedelta(seconds=5)]
    assert cps_wait(long_gone, 1, NOW) == timedelta(milliseconds=1)  # never zero or negative
