"""The do-not-call list on the lab Asterisk, through the REST API: a listed number (here by a
range) is refused for ``POST /calls/outbound`` with 403 and its reason, and the same number as
a campaign's contact is skipped with its outcome, while an AMI session of its own counts the
trunk's channels: only the number not listed ever reaches the PBX."""

from __future__ import annotations

import asyncio

import pytest

from e2e.conftest import LiveService
from e2e.trunk_observer import observe_trunk
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(90)]

LISTED = "+31610000200"  # the lab party that answers, were it called
RANGE = "+316100002*"  # lists it (and every number starting with +316100002)
BUSY = "+31610000486"  # not listed: its call reaches the trunk and is busy


async def test_a_listed_number_never_reaches_the_pbx(
    lab: LabAsterisk, live_ari: LiveService
) -> None:
    live = live_ari
    status, added = await live.post("/do-not-call", {"number": RANGE})
    assert status == 201, added
    assistant = {"first_message": "Hello"}
    async with observe_trunk(lab, "carrier") as trunk:
        status, refused = await live.post(
            "/calls/outbound", {"destination": LISTED, "assistant": assistant}
        )
        assert status == 403, refused
        assert refused["error"] == "Do not call"
        assert refused["reason"] == "do-not-call"
        status, created = await live.post(
            "/campaigns",
            {
                "name": "Lab do-not-call",
                "assistant": assistant,
                "contacts": [{"destination": LISTED}, {"destination": BUSY}],
                "ring_timeout_seconds": 5,
                "calling_window": None,
            },
        )
        assert status == 201, created
        campaign_id = created["id"]
        async with asyncio.timeout(40):
            while (body := (await live.get(f"/campaigns/{campaign_id}"))[1])[
                "status"
            ] != "finished":
                await asyncio.sleep(0.25)
        await asyncio.sleep(0.5)  # any late channel would show by now
    assert body["progress"]["by_outcome"] == {"do-not-call": 1, "busy": 1}
    _, contacts = await live.get(f"/campaigns/{campaign_id}/contacts")
    skipped = {c["destination"]: c for c in contacts["contacts"]}[LISTED]
    assert skipped["outcome"] == "do-not-call"
    assert skipped["attempts"] == 0
    assert skipped["call_id"] is None
    # One channel at the PBX in all: the busy contact's. The listed number got none.
    assert len(trunk.created) == 1
    _, calls = await live.get("/calls")
    assert [c["caller_phone"] for c in calls["calls"]] == [BUSY]
