"""Webhook delivery is fair between organizations and endpoints, as organizations see it through
the API: endpoints created with ``POST /webhooks`` on real receivers on 127.0.0.1, events from
real calls (placed with ``POST /calls/outbound``, answered and hung up by the PBX).

acme's first endpoint hangs: it holds every request and answers none while the test runs (the
node's request timeout is longer than the test). Its deliveries wait, at most
``[webhooks] concurrency_per_endpoint`` of them in flight; meanwhile acme's other endpoint
and globex's endpoint get every event of their calls, each once. When the hanging endpoint
answers again it gets all of its events too: nothing was lost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from api.conftest import Api, serving
from fakes.world import DESTINATION, GLOBEX_ASSISTANT_ID, SUPPORT_ID, make_settings
from voicedock.domain.webhooks import DeliveryCaps, generate_secret
from webhooks.receiver import Receiver, wait_until

pytestmark = pytest.mark.unit

PER_CALL = ["end-of-call-report", "status-update", "status-update", "status-update"]
WAIT = 15.0  # seconds: a bound against a hang, not a measurement


@pytest.fixture
async def receivers() -> AsyncIterator[dict[str, Receiver]]:
    """acme's hanging endpoint, acme's other endpoint and globex's, each a real receiver."""
    made = {name: Receiver(generate_secret()) for name in ("hanging", "acme", "globex")}
    made["hanging"].hold = asyncio.Event()  # requests wait until the test lets them answer
    for receiver in made.values():
        await receiver.start()
    yield made
    for receiver in made.values():
        if receiver.hold is not None:
            receiver.hold.set()
        await receiver.stop()


async def add_endpoint(api: Api, key: str, receiver: Receiver) -> None:
    resp = await api.client.post("/webhooks", json={"url": receiver.url}, headers=api.auth(key))
    assert resp.status == 201, await resp.text()
    receiver.secret = (await resp.json())["secret"]  # it verifies with the one shown


async def finished_call(api: Api, key: str, assistant_id: str) -> str:
    """A call placed through the API, answered and hung up: its id."""
    body = {"destination": DESTINATION, "assistant_id": assistant_id}
    resp = await api.client.post("/calls/outbound", json=body, headers=api.auth(key))
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    await api.pbx.answer(call_id)
    await api.pbx.hang_up_remote(call_id)
    return call_id


def received(receiver: Receiver, call_id: str) -> list[str]:
    """The event types of the call the receiver took (signatures verified), sorted."""
    bodies = [json.loads(r.body) for r in receiver.requests]
    return sorted(b["type"] for b in bodies if b["call_id"] == call_id)


def has_every_event(receiver: Receiver, call_ids: list[str]) -> bool:
    return all(received(receiver, call_id) == PER_CALL for call_id in call_ids)


async def test_a_hanging_endpoint_delays_only_its_own_deliveries(
    database_url: str, receivers: dict[str, Receiver]
) -> None:
    settings = make_settings(database_url)
    settings.egress.allow_loopback = True  # the receivers are on this host, as in the lab
    settings.webhooks.poll_interval_ms = 50
    settings.webhooks.request_timeout_seconds = 300  # the hanging endpoint never times out here
    hanging, acme_ok, globex_ok = receivers["hanging"], receivers["acme"], receivers["globex"]
    async with serving(settings) as api:
        await add_endpoint(api, api.acme_key, hanging)
        await add_endpoint(api, api.acme_key, acme_ok)
        await add_endpoint(api, api.globex_key, globex_ok)
        # acme's calls: more events for the hanging endpoint than the node has slots (8 before).
        acme_calls = [await finished_call(api, api.acme_key, SUPPORT_ID) for _ in range(3)]
        await wait_until(lambda: hanging.in_flight > 0, WAIT)
        # globex's endpoint gets every event of a call placed after acme's backlog ...
        globex_call = await finished_call(api, api.globex_key, GLOBEX_ASSISTANT_ID)
        await wait_until(lambda: has_every_event(globex_ok, [globex_call]), WAIT)
        # ... and acme's other endpoint every event of acme's calls.
        await wait_until(lambda: has_every_event(acme_ok, acme_calls), WAIT)
        # Meanwhile the hanging endpoint has answered nothing: its deliveries are all pending,
        # no more of them in flight than its cap.
        assert hanging.requests == []
        assert 0 < hanging.in_flight <= hanging.max_in_flight <= DeliveryCaps().per_endpoint
        # Once it answers, it gets every event of acme's calls too.
        assert hanging.hold is not None
        hanging.hold.set()
        await wait_until(lambda: has_every_event(hanging, acme_calls), WAIT)
    for receiver in (hanging, acme_ok, globex_ok):
        assert receiver.rejected == 0
        assert set(receiver.accepted.values()) == {1}  # each event once
    assert globex_ok.accepted.keys().isdisjoint(acme_ok.accepted.keys())
