"""A caller number carriers label spam, on the lab Asterisk: a campaign of 20 calls to people
whose phones label one of the organization's two numbers spam (the lab's ``+31610000201``
never answers that caller number, ``LAB_SPAM_LABELLED``, and answers the other). Once that
number has missed enough calls, the organization learns it three ways — its answer rate of 0 in
``GET /phone-numbers/{id}``, a signed ``phone-number-health`` webhook, ``/metrics`` — and every
call the campaign places after that is made from the other number."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.test_metrics_api import TOKEN, samples
from e2e.conftest import LiveService, serve, service_settings
from fakes.world import ACME, ACME_NUMBERS, number_id, org_id
from voicedock_lab.server import LabAsterisk
from webhooks.receiver import Receiver, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(180)]

SCREENING = "+31610000201"  # the lab's person who never answers a number labelled spam
LABELLED, OTHER = ACME_NUMBERS
SPAM, GOOD = number_id(LABELLED), number_id(OTHER)


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "numbers.db", "ari")
    for number in settings.numbers:
        number.max_concurrent_calls = 5
    settings.number_health.min_calls = 3
    settings.number_health.answer_rate_floor = 0.5
    settings.metrics.bearer_token = TOKEN
    settings.egress.allow_loopback = True  # the test's webhook receiver
    settings.webhooks.poll_interval_ms = 50
    lab.cli(f"dialplan set global LAB_SPAM_LABELLED {LABELLED}")
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()
        lab.cli("dialplan set global LAB_SPAM_LABELLED none")


async def test_a_number_labelled_spam_is_flagged_and_the_campaign_goes_on_from_the_other(
    live: LiveService,
) -> None:
    receiver = Receiver(secret="")
    await receiver.start()
    try:
        status, endpoint = await live.post(
            "/webhooks", {"url": receiver.url, "event_types": ["phone-number-health"]}
        )
        assert status == 201, endpoint
        receiver.secret = endpoint["secret"]
        contacts = [{"destination": SCREENING, "variables": {"n": str(i)}} for i in range(20)]
        status, created = await live.post(
            "/campaigns",
            {
                "name": "Reminders",
                "assistant": {"first_message": "Hello {{n}}"},
                "contacts": contacts,
                "ring_timeout_seconds": 5,
                "max_concurrent": 2,
            },
        )
        assert status == 201, created
        async with asyncio.timeout(150):
            while (campaign := (await live.get(f"/campaigns/{created['id']}"))[1])[
                "status"
            ] != "finished":
                await asyncio.sleep(0.5)
        await wait_until(lambda: len(receiver.accepted) >= 1)
    finally:
        await receiver.stop()
    _, spam = await live.get(f"/phone-numbers/{SPAM}")
    _, good = await live.get(f"/phone-numbers/{GOOD}")
    assert spam["health"]["calls"] >= 3
    assert (spam["health"]["answered"], spam["health"]["answer_rate"]) == (0, 0.0)
    assert spam["flagged_at"] is not None
    assert good["health"]["answer_rate"] == 1.0
    assert good["flagged_at"] is None
    events = [json.loads(r.body) for r in receiver.requests if r.msg_id in receiver.accepted]
    assert [(e["type"], e["data"]["phone_number_id"], e["data"]["healthy"]) for e in events] == [
        ("phone-number-health", SPAM, False)
    ]
    # Every call placed after the flag is the other number's; the campaign had calls left.
    _, listed = await live.get("/calls?limit=100")
    assert len(listed["calls"]) == 20
    calls = [await live.call(c["id"]) for c in listed["calls"]]
    after = [c["number_id"] for c in calls if c["created_at"] > spam["flagged_at"]]
    assert after, "the flag came after the campaign's last call"
    assert set(after) == {GOOD}
    by_number = Counter(c["number_id"] for c in calls)
    assert by_number[SPAM] == spam["health"]["calls"]
    assert campaign["progress"]["by_outcome"] == {
        "answered": by_number[GOOD],
        "no-answer": by_number[SPAM],
    }
    metrics = await live.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    found = samples(await metrics.text())
    labels = (("number_id", SPAM), ("organization", org_id(ACME)))
    assert found[("voicedock_number_answer_rate", labels)] == 0.0
    assert found[("voicedock_number_flagged", labels)] == 1.0
