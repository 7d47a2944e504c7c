"""Caller numbers' health through the real app and a FakePbx: the calls of one of the
organization's two numbers are never answered, the other's are; once the first has enough
misses it is flagged (``GET /phone-numbers/{id}``, a signed ``phone-number-health`` webhook,
``/metrics``) and the pool calls from the other; a rest keeps it out of the pool unless named,
and ``hours: 0`` brings it back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from api.conftest import Api, serving
from api.test_metrics_api import TOKEN, samples
from fakes.world import (
    ACME,
    ACME_NUMBERS,
    DESTINATION,
    SUPPORT_ID,
    make_settings,
    number_id,
    org_id,
)
from voicedock.domain.records import utcnow
from voicedock.pbx.base import PbxEventKind
from webhooks.receiver import Receiver, wait_until

pytestmark = pytest.mark.unit

SPAM, GOOD = (number_id(n) for n in ACME_NUMBERS)
NO_ANSWER = 19  # Q.850: the callee was alerted and did not answer


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    settings = make_settings(database_url)
    settings.number_health.min_calls = 3
    settings.number_health.answer_rate_floor = 0.5
    settings.metrics.bearer_token = TOKEN
    settings.egress.allow_loopback = True  # the test's webhook receiver
    settings.webhooks.poll_interval_ms = 50
    async with serving(settings) as running:
        yield running


async def _call(api: Api, **body: Any) -> tuple[str, str]:
    """A call placed from the pool (or as ``body`` says), answered and ended by the callee on
    ``GOOD``, never answered on ``SPAM``: its id and its number's."""
    placed = await api.client.post(
        "/calls/outbound",
        json={"destination": DESTINATION, "assistant_id": SUPPORT_ID, **body},
        headers=api.auth(),
    )
    assert placed.status == 200, await placed.text()
    call_id = str((await placed.json())["call_id"])
    call = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    if call["number_id"] == SPAM:
        await api.pbx.emit(call_id, PbxEventKind.HANGUP, NO_ANSWER)
    else:
        await api.pbx.answer(call_id)
        await api.pbx.hang_up_remote(call_id)
    async with asyncio.timeout(5):
        while (await _get(api, f"/calls/{call_id}"))["status"] not in ("ended", "failed"):
            await asyncio.sleep(0.02)
    return call_id, str(call["number_id"])


async def _get(api: Api, path: str) -> Any:
    response = await api.client.get(path, headers=api.auth())
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_number_whose_calls_go_unanswered_is_flagged_and_the_pool_calls_from_the_other(
    api: Api,
) -> None:
    receiver = Receiver(secret="")
    await receiver.start()
    try:
        created = await api.client.post(
            "/webhooks",
            json={"url": receiver.url, "event_types": ["phone-number-health"]},
            headers=api.auth(),
        )
        assert created.status == 201, await created.text()
        receiver.secret = (await created.json())["secret"]
        # The pool takes the least recently used: the two numbers in turn.
        first = [(await _call(api))[1] for _ in range(6)]
        assert sorted(first) == sorted([SPAM, GOOD] * 3), first
        await wait_until(lambda: len(receiver.accepted) == 1)
        spam = await _get(api, f"/phone-numbers/{SPAM}")
        assert spam["health"]["calls"] == 3
        assert spam["health"]["answered"] == 0
        assert spam["health"]["answer_rate"] == 0.0
        assert spam["health"]["healthy"] is False
        assert spam["flagged_at"] is not None
        assert spam["resting_until"] is None
        good = await _get(api, f"/phone-numbers/{GOOD}")
        assert good["health"]["answer_rate"] == 1.0
        assert good["health"]["short_call_rate"] == 1.0  # each hung up at once
        assert good["health"]["healthy"] is True
        assert good["flagged_at"] is None
        # Flagged: the pool calls from the healthy number, though the flagged one was used
        # longer ago.
        after = [(await _call(api))[1] for _ in range(3)]
        assert after == [GOOD] * 3
    finally:
        await receiver.stop()
    events = [json.loads(r.body) for r in receiver.requests if r.msg_id in receiver.accepted]
    assert [e["type"] for e in events] == ["phone-number-health"]
    data = events[0]["data"]
    assert data["phone_number_id"] == SPAM
    assert data["number"] == ACME_NUMBERS[0]
    assert data["healthy"] is False
    assert (data["calls"], data["answered"], data["answer_rate"]) == (3, 0, 0.0)
    metrics = await api.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    found = samples(await metrics.text())
    spam_labels = (("number_id", SPAM), ("organization", org_id(ACME)))
    good_labels = (("number_id", GOOD), ("organization", org_id(ACME)))
    assert found[("voicedock_number_answer_rate", spam_labels)] == 0.0
    assert found[("voicedock_number_flagged", spam_labels)] == 1.0
    assert found[("voicedock_number_flagged", good_labels)] == 0.0
    assert found[("voicedock_number_calls", good_labels)] == 6.0


async def test_a_rested_number_is_called_from_only_when_named_and_comes_back_at_zero_hours(
    api: Api,
) -> None:
    rested = await api.client.post(
        f"/phone-numbers/{SPAM}/rest", json={"hours": 24}, headers=api.auth()
    )
    assert rested.status == 200, await rested.text()
    assert (await rested.json())["resting_until"] is not None
    pool = [(await _call(api))[1] for _ in range(3)]
    assert pool == [GOOD] * 3
    _, named = await _call(api, number_id=SPAM)  # a request that names it still has it
    assert named == SPAM
    back = await api.client.post(
        f"/phone-numbers/{SPAM}/rest", json={"hours": 0}, headers=api.auth()
    )
    answer = await back.json()
    assert (answer["resting_until"], answer["flagged_at"]) == (None, None)
    # In the pool again, taken in its turn (the named call made it the most recently used).
    assert [(await _call(api))[1] for _ in range(2)] == [GOOD, SPAM]
    for bad in ({"hours": -1}, {"hours": 721}, {}, {"hours": "24"}):
        refused = await api.client.post(f"/phone-numbers/{SPAM}/rest", json=bad, headers=api.auth())
        assert refused.status == 400, bad
    other = await api.client.post(
        "/phone-numbers/num_none/rest", json={"hours": 1}, headers=api.auth()
    )
    assert other.status == 404


async def test_the_operators_rest_keeps_a_flagged_number_out_until_it_ends(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    settings.number_health.min_calls = 3
    settings.number_health.answer_rate_floor = 0.5
    settings.number_health.rest_hours = 1
    later = [timedelta(0)]
    async with serving(settings, clock=lambda: utcnow() + later[0]) as api:
        first = [(await _call(api))[1] for _ in range(6)]
        assert first.count(SPAM) == 3
        spam = await _get(api, f"/phone-numbers/{SPAM}")
        assert spam["flagged_at"] is not None
        assert spam["resting_until"] is not None
        assert [(await _call(api))[1] for _ in range(2)] == [GOOD, GOOD]
        later[0] = timedelta(hours=1, minutes=1)  # its rest is over
        assert (await _call(api))[1] == SPAM  # the least recently used, back in the pool
        back = await _get(api, f"/phone-numbers/{SPAM}")
        # Its flag cleared; its calls counted from the end of the rest: one, no verdict yet.
        assert (back["flagged_at"], back["resting_until"]) == (None, None)
        assert back["health"]["calls"] == 1
        assert back["health"]["healthy"] is None


async def test_with_local_presence_each_callee_is_called_from_the_number_of_its_area(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    settings.numbers[1].number = "+4930123457"  # acme's Berlin number beside its Dutch one
    local_to_berlin = number_id("+4930123457")
    settings.number_health.prefer_local = True
    berlin = "+493012345678"
    async with serving(settings) as api:
        calls = [
            (destination, (await _call(api, destination=destination))[1])
            for destination in (berlin, DESTINATION, berlin, berlin, DESTINATION, DESTINATION)
        ]
    # The least recently used would alternate; each callee gets the number of its own area.
    assert calls == [(d, local_to_berlin if d == berlin else SPAM) for d, _ in calls]
