"""A caller number's health in the store (both backends): its calls' outcomes since a moment,
the pool's order by health and local presence, a resting number left out unless named, and a
flag changed by one of two writers only."""

from __future__ import annotations

import dataclasses

import pytest

from voicedock.domain.records import CallStatus, Direction, PhoneNumber
from voicedock.store import Store
from voicedock.store.base import NumberChoice

from .builders import at, insert_call, make_call, seed_number, seed_org

pytestmark = pytest.mark.unit

UNANSWERED = ("busy", "no-answer", "rejected")


async def _ended(store: Store, number: PhoneNumber, seconds: float, **fields: object) -> None:
    call = make_call(number.organization_id, number_id=number.id)
    call = dataclasses.replace(call, direction=Direction.OUTBOUND, created_at=at(seconds), **fields)
    await insert_call(store, call)


async def test_outcomes_count_what_the_callees_side_decided_since_a_moment(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id)
    answered = {"status": CallStatus.ENDED, "started_at": at(1), "ended_at": at(60)}
    await _ended(store, number, 0, **answered, duration_seconds=59)
    await _ended(store, number, 1, **answered, duration_seconds=3)  # short
    await _ended(store, number, 2, **answered, duration_seconds=20, end_reason="voicemail")
    await _ended(store, number, 3, status=CallStatus.FAILED, error="no-answer")
    await _ended(store, number, 4, status=CallStatus.FAILED, error="busy")
    # Not the callee's doing, or not counted: ours, a test call, still ringing, too old.
    await _ended(store, number, 5, status=CallStatus.FAILED, error="pbx-error")
    await _ended(store, number, 6, status=CallStatus.ENDED, end_reason="cancelled")
    await _ended(store, number, 7, status=CallStatus.FAILED, error="busy", test_run_id="run_1")
    await _ended(store, number, 8, status=CallStatus.CONNECTING)
    await _ended(store, number, -100, status=CallStatus.FAILED, error="no-answer")
    async with store.transaction() as tx:
        outcomes = await tx.number_outcomes(number.id, at(0), 10, UNANSWERED)
    assert (outcomes.calls, outcomes.answered) == (5, 3)
    assert (outcomes.short_calls, outcomes.voicemails) == (1, 1)
    assert outcomes.answer_rate() == 3 / 5
    async with store.transaction() as tx:
        none = await tx.number_outcomes(number.id, at(1000), 10, UNANSWERED)
    assert (none.calls, none.answer_rate(), none.short_call_rate()) == (0, None, None)


async def _reserved(store: Store, choice: NumberChoice, seconds: float) -> str | None:
    async with store.transaction() as tx:
        number = await tx.reserve_phone_number(choice, at(seconds))
    return None if number is None else number.id


async def test_the_pool_prefers_healthy_then_local_numbers_and_skips_resting_ones(
    store: Store,
) -> None:
    org = await seed_org(store)
    flagged = await seed_number(
        store, org.id, max_concurrent_calls=5, e164="+12125550100", last_used_at=at(-300)
    )
    far = await seed_number(
        store, org.id, max_concurrent_calls=5, e164="+13055550100", last_used_at=at(-200)
    )
    local = await seed_number(
        store, org.id, max_concurrent_calls=5, e164="+12125550101", last_used_at=at(-100)
    )
    async with store.transaction() as tx:
        assert await tx.change_number_flag(dataclasses.replace(flagged, flagged_at=at(-1)), None)
    plain = NumberChoice(org.id)
    assert await _reserved(store, plain, 0) == flagged.id  # no preference: the LRU
    healthy = NumberChoice(org.id, prefer_healthy=True, local_prefix="+1212")
    assert await _reserved(store, healthy, 1) == local.id  # healthy and local first
    assert await _reserved(store, NumberChoice(org.id, prefer_healthy=True), 2) == far.id
    # A resting number: never from the pool until its rest is over; named, it is taken.
    async with store.transaction() as tx:
        await tx.set_number_rest(dataclasses.replace(far, resting_until=at(100)))
    assert await _reserved(store, NumberChoice(org.id, among=(far.id,)), 3) is None
    assert await _reserved(store, NumberChoice(org.id, number_id=far.id), 4) == far.id
    assert await _reserved(store, NumberChoice(org.id, among=(far.id,)), 101) == far.id


async def test_a_flag_is_changed_by_the_writer_that_saw_it_as_it_is(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id)
    flagged = dataclasses.replace(number, flagged_at=at(5))
    async with store.transaction() as tx:
        assert await tx.change_number_flag(flagged, None)
    async with store.transaction() as tx:  # the other node's call saw it unflagged too
        assert not await tx.change_number_flag(dataclasses.replace(number, flagged_at=at(6)), None)
    async with store.transaction() as tx:
        cleared = dataclasses.replace(number, flagged_at=None)
        assert await tx.change_number_flag(cleared, at(5))
    stored = await store.get_phone_number(org.id, number.id)
    assert stored is not None
    assert stored.flagged_at is None
