"""Toll fraud with a stolen ``full`` key, against the node as ``voicedock.example.toml`` sets it
up: destinations the policy refuses (Caribbean NANP countries billed as international, premium
numbers of the operator's own country, numbers impossible in their country) never reach the
PBX, whether dialled, transferred to or uploaded as campaign contacts; and a burst of calls is
held to the example's default caps. What reached the PBX is counted by an AMI session of the
test's own on the trunk (``e2e.trunk_observer``), not by asking the service.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from e2e.trunk_observer import observe_trunk
from pbx.lab_calls import ANSWERS
from tenancy.conftest import Tenants
from voicedock.config import Settings
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(120)]

TRUNK = "carrier"  # the example's trunk

# Valid numbers of the Caribbean NANP countries of one-ring scams: +1 like the US, billed as
# international (Jamaica, Dominican Republic, Turks and Caicos, Antigua and Barbuda).
CARIBBEAN = ("+18762101234", "+18092345678", "+16492311234", "+12684641234")
NL_PREMIUM = "+319061234"  # 0906: premium rate in the example's own country
TURKEY_IMPOSSIBLE = "+9009011234567"  # 0901…: no such range in Turkey
TOO_LONG = "+316123456789012"  # an NL mobile number with digits too many (15: still E.164)

REFUSED = "Destination not allowed"
INVALID = "Invalid destination format"


async def assistant_id(tenants: Tenants) -> str:
    status, body = await tenants.service.get("/assistants")
    assert status == 200, body
    return str(body["assistants"][0]["id"])


async def post_call(tenants: Tenants, destination: str, assistant: str) -> tuple[int, Any]:
    """``POST /calls/outbound``, waiting out the example's calls-per-second limit (429) so
    that what answers is the destination policy."""
    body = {"destination": destination, "assistant_id": assistant}
    async with asyncio.timeout(20):
        while True:
            status, answer = await tenants.service.post("/calls/outbound", body)
            if status != 429:
                return status, answer
            await asyncio.sleep(0.25)


async def test_refused_destinations_never_reach_the_pbx(lab: LabAsterisk, tenants: Tenants) -> None:
    assistant = await assistant_id(tenants)
    expected = {number: (403, REFUSED) for number in (*CARIBBEAN, NL_PREMIUM)}
    expected |= {TURKEY_IMPOSSIBLE: (400, INVALID), TOO_LONG: (400, INVALID)}
    answers: dict[str, tuple[int, str]] = {}
    async with observe_trunk(lab, TRUNK) as trunk:
        for number in expected:
            status, body = await post_call(tenants, number, assistant)
            answers[number] = (status, body.get("error"))
            assert body.get("message"), body  # the documented error shape
        # A call the policy allows goes through, and is the only channel on the trunk.
        status, body = await post_call(tenants, ANSWERS, assistant)
        assert status == 200, body
        await tenants.service.wait_status(body["call_id"], ("in-progress", "ended", "failed"))
    assert answers == expected
    assert len(trunk.created) == 1, "a refused destination reached the carrier trunk"
    _, calls = await tenants.service.get("/calls")
    assert {c["caller_phone"] for c in calls["calls"]} == {ANSWERS}  # the party called


async def test_a_burst_of_calls_is_held_to_the_example_caps(
    lab: LabAsterisk, tenant_settings: Settings, tenants: Tenants
) -> None:
    (trunk_settings,) = [t for t in tenant_settings.trunks if t.name == TRUNK]
    per_key = tenant_settings.rate_limits.calls_per_second
    concurrent = tenant_settings.limits.organization_max_calls("acme")
    assert trunk_settings.max_cps, "the example trunk has no calls-per-second cap"
    assert trunk_settings.max_channels, "the example trunk has no channel cap"
    assert per_key, "the example sets no calls-per-second limit per key"
    assert concurrent, "the example's organization has no concurrent-call limit"
    cap = min(per_key, trunk_settings.max_cps, concurrent)
    burst = 4 * cap + 4
    assistant = await assistant_id(tenants)
    body = {"destination": ANSWERS, "assistant_id": assistant}
    async with observe_trunk(lab, TRUNK) as trunk:
        answers = await asyncio.gather(
            *(tenants.service.post("/calls/outbound", body) for _ in range(burst))
        )
        await asyncio.sleep(1.5)  # the originates of the admitted calls reach the PBX
    placed = [a for status, a in answers if status == 200]
    assert 1 <= len(placed) <= cap, answers
    assert {a["error"] for status, a in answers if status != 200} <= {
        "Too many requests",
        "Call limit reached",
        "All phone numbers busy",
    }
    assert all(status in (200, 429) for status, _ in answers)
    assert len(trunk.created) <= cap  # what reached the carrier: the admitted calls only
    assert trunk.max_in_any_second() <= cap
    for call in placed:
        await tenants.service.post(f"/calls/{call['call_id']}/control", {"type": "end-call"})


async def test_transfer_to_a_refused_destination_is_refused(
    lab: LabAsterisk, tenants: Tenants
) -> None:
    assistant = await assistant_id(tenants)
    status, placed = await post_call(tenants, ANSWERS, assistant)
    assert status == 200, placed
    call_id = placed["call_id"]
    await tenants.service.wait_status(call_id, ("in-progress",), within=15)
    async with observe_trunk(lab, TRUNK) as trunk:
        for destination, answer in (
            (CARIBBEAN[0], (403, REFUSED)),
            (NL_PREMIUM, (403, REFUSED)),
            (TURKEY_IMPOSSIBLE, (400, INVALID)),
        ):
            status, body = await tenants.service.post(
                f"/calls/{call_id}/control", {"type": "transfer", "destination": destination}
            )
            assert (status, body.get("error")) == answer, (destination, body)
        await asyncio.sleep(0.5)
    assert trunk.created == []
    assert (await tenants.service.call(call_id))["status"] == "in-progress"
    await tenants.service.post(f"/calls/{call_id}/control", {"type": "end-call"})
    await tenants.service.wait_status(call_id, ("ended",), within=15)


@pytest.mark.parametrize(
    ("destination", "answer"),
    [
        (TURKEY_IMPOSSIBLE, (400, INVALID)),
        (TOO_LONG, (400, INVALID)),
        (CARIBBEAN[1], (403, REFUSED)),
    ],
)
async def test_campaign_contacts_are_checked_at_upload(
    lab: LabAsterisk, tenants: Tenants, destination: str, answer: tuple[int, str]
) -> None:
    async with observe_trunk(lab, TRUNK) as trunk:
        status, body = await tenants.service.post(
            "/campaigns",
            {
                "name": "Reminders",
                "assistant": {"first_message": "Hello"},
                "contacts": [{"destination": ANSWERS}, {"destination": destination}],
            },
        )
        assert (status, body.get("error")) == answer, body
        assert "contacts[1]" in body["message"]
        await asyncio.sleep(1.0)
    assert trunk.created == []
    _, campaigns = await tenants.service.get("/campaigns")
    assert campaigns["campaigns"] == []
