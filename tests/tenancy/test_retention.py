"""Call records and transcripts are not kept forever when the operator says so (``[retention]``,
off by default): calls that ended longer ago than ``call_days`` are gone (``GET /calls/{id}``
answers 404), the transcript, summary and analysis of those older than ``transcript_days``
are blanked, newer calls are intact, and a live call is never touched, however old.

Calls are placed through REST on the lab Asterisk, aged by writing old timestamps through the
store, and one retention pass runs as the service's periodic task runs it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import serve
from fakes.world import assistant_id
from pbx.lab_calls import BUSY, NO_ANSWER
from pg_server import fresh_database
from tenancy.conftest import ORGANIZATION, Tenants
from voicedock.config import RetentionSettings, Settings
from voicedock.domain.records import (
    Call,
    CallEvent,
    CallMessage,
    CallStatus,
    Direction,
    Organization,
    utcnow,
)
from voicedock.domain.webhooks import DeliveryCaps, WebhookEndpoint
from voicedock.organizations.retention import RetentionPass, apply_retention, retain_periodically
from voicedock.store import Store, open_store

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.usefixtures("unpaced")]

ASSISTANT = assistant_id(ORGANIZATION, "Customer Support")


async def place(tenants: Tenants, destination: str) -> str:
    body = {"destination": destination, "assistant_id": ASSISTANT, "ring_timeout_seconds": 60}
    status, answer = await tenants.service.post("/calls/outbound", body)
    assert status == 200, answer
    return str(answer["call_id"])


async def age(store: Store, call_id: str, ended_days_ago: float | None, **extra: Any) -> None:
    """Rewrite the call's timestamps as if it ran ``ended_days_ago`` (None: only its start,
    a year back, for a call still live), and give it a transcript and analysis."""
    then = utcnow() - timedelta(days=ended_days_ago if ended_days_ago is not None else 365)
    async with store.transaction() as tx:
        call = await tx.get_call_for_update(call_id)
        assert call is not None
        aged = dataclasses.replace(
            call,
            started_at=then,
            ended_at=then if ended_days_ago is not None else None,
            updated_at=then,
            summary="The caller asked about an invoice.",
            analysis_result={"successEvaluation": True},
            **extra,
        )
        await tx.update_call(aged)
        await tx.add_message(CallMessage(call_id, "user", "my number is 0612345678", then, then))
        await tx.add_event(CallEvent(call_id, "transcript", {"text": "my number is"}, then))


async def test_a_retention_pass_deletes_old_calls_blanks_old_transcripts_and_spares_live_ones(
    tenants: Tenants,
) -> None:
    live = tenants.service
    store = live.service.store
    old, recent, new = [await place(tenants, BUSY) for _ in range(3)]
    ringing = await place(tenants, NO_ANSWER)
    for call_id in (old, recent, new):
        await live.wait_status(call_id, ("failed", "ended"), within=15)
    await age(store, old, ended_days_ago=40)
    await age(store, recent, ended_days_ago=10)
    await age(store, new, ended_days_ago=0.01)
    await age(store, ringing, ended_days_ago=None)  # started a year ago, still live
    settings = RetentionSettings(call_days=30, transcript_days=7)
    try:
        done = await apply_retention(store, settings, batch=2)  # several batches
        assert done.calls == 1
        # The old call is gone, with its transcript and events.
        assert (await live.client.get(f"/calls/{old}", headers=live.auth())).status == 404
        assert await store.list_messages(old) == []
        assert await store.list_events(old) == []
        events = await live.client.get(f"/calls/{old}/events", headers=live.auth())
        assert events.status == 404
        # The recent one stays, its transcript and analysis blanked.
        kept = await live.call(recent)
        assert kept["status"] == "failed"
        assert kept["messages"] == []
        assert kept["summary"] is None
        assert kept["analysis_result"] is None
        assert [e.type for e in await store.list_events(recent)].count("transcript") == 0
        assert [e.type for e in await store.list_events(recent)]  # its status events stay
        # The new one and the live one are intact.
        for call_id in (new, ringing):
            intact = await live.call(call_id)
            assert [m["content"] for m in intact["messages"]] == ["my number is 0612345678"]
            assert intact["summary"] == "The caller asked about an invoice."
            assert intact["analysis_result"] is not None
        assert (await live.call(ringing))["status"] in ("connecting", "in-progress")
        # A second pass (another node's, say) finds nothing more to do.
        again = await apply_retention(store, settings)
        assert again == RetentionPass()
    finally:
        await live.post(f"/calls/{ringing}/control", {"type": "end-call"})


async def test_the_service_runs_a_pass_when_it_starts(
    tenants: Tenants, tenant_settings: Settings
) -> None:
    """The operator sets ``[retention]`` and restarts the node: the service's own periodic
    task deletes the old call at once (and then hourly); the new one stays."""
    live = tenants.service
    old, new = [await place(tenants, BUSY) for _ in range(2)]
    for call_id in (old, new):
        await live.wait_status(call_id, ("failed", "ended"), within=15)
    await age(live.service.store, old, ended_days_ago=400)
    await live.client.close()
    tenant_settings.retention.call_days = 365
    restarted = await serve(tenant_settings)
    try:
        async with asyncio.timeout(5):
            while (await restarted.client.get(f"/calls/{old}", headers=live.auth())).status != 404:
                await asyncio.sleep(0.05)
        assert (await restarted.client.get(f"/calls/{new}", headers=live.auth())).status == 200
    finally:
        await restarted.client.close()


async def test_the_service_runs_retention_periodically(tmp_path: Path) -> None:
    """``retain_periodically`` (what the service spawns when ``[retention]`` is set) passes
    at once and again after its interval."""
    store = await open_store(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        await store.migrate()
        task = asyncio.create_task(
            retain_periodically(store, RetentionSettings(call_days=1), interval=0.05)
        )
        await asyncio.sleep(0.2)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await store.aclose()


async def _aged_calls(store: Store) -> tuple[str, str, str]:
    """Three calls of an organization in the store: ended long ago, ended now, live; and two
    webhook deliveries of long ago, one delivered, one still pending."""
    now = utcnow()
    org = Organization(id="org-retention", name="retention", created_at=now)
    endpoint = WebhookEndpoint("endpoint-retention", org.id, "https://crm.example/", "whsec_x")
    async with store.transaction() as tx:
        await tx.insert_organization(org)
        await tx.insert_webhook_endpoint(endpoint)
    ids = []
    for n, (status, ended) in enumerate(
        [
            (CallStatus.ENDED, now - timedelta(days=90)),
            (CallStatus.ENDED, now),
            (CallStatus.IN_PROGRESS, None),
        ]
    ):
        call = Call(
            id=f"call-outbound-retention{n:07d}",
            organization_id=org.id,
            direction=Direction.OUTBOUND,
            status=status,
            caller_phone="+31612345678",
            assistant_phone="+31850835037",
            created_at=now - timedelta(days=100),
            updated_at=ended or now - timedelta(days=100),
            ended_at=ended,
        )
        async with store.transaction() as tx:
            await tx.insert_call(call)
            await tx.add_message(CallMessage(call.id, "user", "hello", now, now))
        ids.append(call.id)
    old_outbox = store.outbox()
    for n in range(2):
        await old_outbox.enqueue(endpoint.id, "end-of-call-report", b'{"transcript":"hi"}', f"m{n}")
    (delivered, _) = await old_outbox.claim_due(
        now + timedelta(seconds=1), 2, timedelta(1), caps=DeliveryCaps()
    )
    await old_outbox.mark_delivered(delivered.id)
    return ids[0], ids[1], ids[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return await fresh_database(request.getfixturevalue("postgres_server"), migrated=True)
    return f"sqlite:///{tmp_path / 'retention.db'}"


async def pending_deliveries(store: Store) -> int:
    return (await store.metrics_counts()).webhook_deliveries.get("pending", 0)


async def test_retention_from_two_nodes_at_once(database_url: str) -> None:
    """Two nodes sharing one database run their pass at the same moment, as of 20 days on:
    the call that ended 110 days before goes once; the one that ended 20 days before keeps its
    record but loses its transcript, as does the webhook delivery sent then; the live call
    and the delivery still pending stay."""
    first, second = await open_store(database_url), await open_store(database_url)
    try:
        await first.migrate()
        old, recent, live = await _aged_calls(first)
        assert await pending_deliveries(first) == 1
        settings = RetentionSettings(call_days=60, transcript_days=10)
        later = utcnow() + timedelta(days=20)
        passes = await asyncio.gather(
            apply_retention(first, settings, now=later, batch=1),
            apply_retention(second, settings, now=later, batch=1),
        )
        assert sum(p.calls for p in passes) == 1
        assert sum(p.deliveries for p in passes) == 1
        assert await first.get_call(None, old) is None
        assert await first.list_messages(old) == []
        assert await first.get_call(None, recent) is not None
        assert await first.list_messages(recent) == []
        assert await first.get_call(None, live) is not None
        assert [m.content for m in await first.list_messages(live)] == ["hello"]
        counts = (await first.metrics_counts()).webhook_deliveries
        assert counts.get("delivered", 0) == 0
        assert counts.get("pending", 0) == 1
    finally:
        await first.aclose()
        await second.aclose()
