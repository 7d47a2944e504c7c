"""Per-call options through REST on the lab Asterisk: a call's ``metadata`` reaches every
webhook about it (a signed receiver on 127.0.0.1); a scheduled call reaches the PBX at its
time and no earlier (an AMI observer of the trunk, on Asterisk's clock), one cancelled
with ``end-call`` never reaches it, and neither does one whose range the operator blocked
before its time (it ends ``destination-refused``, reported by its status webhook)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from e2e.conftest import LiveService, serve, service_settings
from e2e.trunk_observer import observe_trunk
from fakes.world import ACME, SUPPORT_ID
from pbx.lab_calls import ANSWERS
from voicedock.config import Settings, WebhookEndpointSettings
from voicedock.domain.webhooks import generate_secret
from voicedock_lab.server import LabAsterisk
from webhooks.receiver import Receiver, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

METADATA = {"crm_id": "c-42", "tags": ["renewal"], "owner": {"team": "billing"}}


def received(receiver: Receiver, marker: bytes) -> bool:
    return any(marker in r.body for r in receiver.requests)


def reporting_to(
    receiver: Receiver, lab: LabAsterisk, database: Path, event_types: list[str]
) -> Settings:
    """The service on the lab Asterisk, ACME's webhooks of ``event_types`` to ``receiver``."""
    settings = service_settings(lab, database, "ari")
    settings.egress.allow_loopback = True
    settings.webhooks.endpoints = [
        WebhookEndpointSettings(
            name="lab",
            organization=ACME,
            url=receiver.url,
            secret=receiver.secret,
            event_types=event_types,
        )
    ]
    return settings


async def test_every_webhook_of_a_real_call_carries_its_metadata(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    receiver = Receiver(generate_secret())
    await receiver.start()
    settings = reporting_to(
        receiver,
        lab,
        tmp_path / "metadata.db",
        ["status-update", "transcript", "end-of-call-report"],
    )
    live = await serve(settings)
    try:
        status, placed = await live.post(
            "/calls/outbound",
            {"destination": ANSWERS, "assistant_id": SUPPORT_ID, "metadata": METADATA},
        )
        assert status == 200, placed
        call_id = str(placed["call_id"])
        await live.wait_status(call_id, ("in-progress",), within=15)
        await wait_until(lambda: received(receiver, b'"transcript"'), 20)
        status, _ = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
        assert status == 200
        await wait_until(lambda: received(receiver, b'"end-of-call-report"'), 20)
        record = await live.call(call_id)
    finally:
        await live.client.close()
        await receiver.stop()
    assert record["metadata"] == METADATA
    bodies = [json.loads(r.body) for r in receiver.requests]
    types = sorted({b["type"] for b in bodies})
    assert types == ["end-of-call-report", "status-update", "transcript"]
    updates = sorted(b["data"]["status"] for b in bodies if b["type"] == "status-update")
    assert updates == ["connecting", "ended", "in-progress"]
    assert all(b["call_id"] == call_id and b["metadata"] == METADATA for b in bodies), bodies
    assert receiver.rejected == 0


async def test_a_scheduled_call_reaches_the_pbx_at_its_time_and_a_cancelled_one_never(
    lab: LabAsterisk, live_ari: LiveService
) -> None:
    now = datetime.now(UTC)
    due = now + timedelta(seconds=5)
    async with observe_trunk(lab, "carrier") as carrier:
        status, scheduled = await live_ari.post(
            "/calls/outbound",
            {"destination": ANSWERS, "assistant_id": SUPPORT_ID, "scheduled_at": due.isoformat()},
        )
        assert status == 201, scheduled
        status, cancelled = await live_ari.post(
            "/calls/outbound",
            {
                "destination": ANSWERS,
                "assistant_id": SUPPORT_ID,
                "scheduled_at": (now + timedelta(seconds=3)).isoformat(),
            },
        )
        assert status == 201, cancelled
        status, _ = await live_ari.post(
            f"/calls/{cancelled['call_id']}/control", {"type": "end-call"}
        )
        assert status == 200
        status, listed = await live_ari.get("/calls?status=scheduled")
        assert [c["id"] for c in listed["calls"]] == [scheduled["call_id"]]
        await asyncio.sleep(2)
        assert carrier.created == []  # nothing at the PBX before its time
        answered = await live_ari.wait_status(scheduled["call_id"], ("in-progress",), within=15)
        status, _ = await live_ari.post(
            f"/calls/{scheduled['call_id']}/control", {"type": "end-call"}
        )
        assert status == 200
        await live_ari.wait_status(scheduled["call_id"], ("ended",), within=10)
    (created,) = carrier.created  # one channel: the scheduled call's, once
    assert created >= due.timestamp()
    assert datetime.fromisoformat(answered["started_at"]) >= due
    record = await live_ari.call(cancelled["call_id"])
    assert (record["status"], record["end_reason"]) == ("ended", "cancelled")
    assert record["started_at"] is None


async def test_a_scheduled_call_to_a_range_blocked_meanwhile_never_reaches_the_pbx(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    receiver = Receiver(generate_secret())
    await receiver.start()
    settings = reporting_to(receiver, lab, tmp_path / "blocked.db", ["status-update"])
    due = datetime.now(UTC) + timedelta(seconds=6)
    try:
        async with observe_trunk(lab, "carrier") as carrier:
            before = await serve(settings)
            try:
                status, scheduled = await before.post(
                    "/calls/outbound",
                    {
                        "destination": ANSWERS,
                        "assistant_id": SUPPORT_ID,
                        "scheduled_at": due.isoformat(),
                    },
                )
                assert status == 201, scheduled
            finally:
                await before.client.close()
            # Before its time, the operator blocks the range and restarts voicedock.
            settings.policy.extra_blocked_prefixes = [ANSWERS[:6]]
            after = await serve(settings)
            try:
                call_id = str(scheduled["call_id"])
                record = await after.wait_status(call_id, ("ended",), within=20)
                await wait_until(lambda: received(receiver, b'"destination-refused"'), 20)
                status, refused = await after.post(
                    "/calls/outbound", {"destination": ANSWERS, "assistant_id": SUPPORT_ID}
                )
            finally:
                await after.client.close()
    finally:
        await receiver.stop()
    assert carrier.created == []  # nothing reached the PBX, before its time or after
    assert (record["end_reason"], record["started_at"]) == ("destination-refused", None)
    assert datetime.fromisoformat(record["ended_at"]) >= due  # refused when its time came
    updates = [
        json.loads(r.body)["data"]
        for r in receiver.requests
        if json.loads(r.body)["type"] == "status-update"
    ]
    assert [(u["status"], u.get("end_reason")) for u in updates] == [
        ("scheduled", None),
        ("ended", "destination-refused"),
    ]
    assert receiver.rejected == 0
    assert (status, refused["error"]) == (403, "Destination not allowed")  # as a new call is
