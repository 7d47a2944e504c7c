"""Transfers through the whole service: REST control → policy → live call → AsteriskPbx → lab."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import SILENT_PARTY
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_calls_e2e import get_call, place, until, wait_status
from fakes.calls import call_finished
from pbx.lab_calls import ANSWERS
from voicedock.pbx.asterisk.media.legs import leg_id
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.policy.internal_targets = ["sales", "busyagent", "warm*"]
    settings.policy.allowed_countries = ["NL"]
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def answered(live: LiveService, party: str = ANSWERS) -> str:
    call_id = await place(live, party)
    assert (await wait_status(live, call_id, ("in-progress",)))["status"] == "in-progress"
    return call_id


async def control(live: LiveService, call_id: str, body: dict[str, Any]) -> Any:
    return await live.client.post(f"/calls/{call_id}/control", json=body, headers=live.auth())


async def events_of(live: LiveService, call_id: str, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in await live.service.store.list_events(call_id) if e.type == kind]


async def test_blind_transfer_to_sales_ends_the_call_as_transferred(live: LiveService) -> None:
    call_id = await answered(live)
    resp = await control(live, call_id, {"type": "transfer", "destination": "sales"})
    assert resp.status == 200, await resp.text()
    ended = await wait_status(live, call_id, ("ended", "failed"), within=20)
    assert (ended["status"], ended["end_reason"]) == ("ended", "transferred")
    assert ended["transferred_to"] == "sales"
    assert ended["transferred_at"] is not None
    assert call_id in {c.id for c in await live.pbx.ari.list_channels()}
    await live.pbx.ari.hangup_channel(call_id)  # the caller is with sales now, not with us


async def test_blind_transfer_to_a_busy_agent_keeps_the_call(live: LiveService) -> None:
    call_id = await answered(live)
    resp = await control(live, call_id, {"type": "transfer", "destination": "busyagent"})
    assert resp.status == 200, await resp.text()

    async def failed() -> bool:
        return bool(await events_of(live, call_id, "transfer"))

    await until(failed, within=20)
    assert await events_of(live, call_id, "transfer") == [
        {"result": "failed", "detail": "dialstatus=BUSY"}
    ]
    detail = await get_call(live, call_id)
    assert detail["status"] == "in-progress"
    assert (detail["transferred_to"], detail["transferred_at"]) == (None, None)
    resp = await control(live, call_id, {"type": "end-call"})
    assert resp.status == 200
    await wait_status(live, call_id, ("ended",), within=20)


@pytest.mark.parametrize(
    ("destination", "reason"),
    [
        ("+4930123456", "country-not-allowed"),
        ("+31909123456", "refused-number-type"),
        ("+881612345678", "blocked-prefix"),
        ("support", "internal-not-allowed"),
    ],
)
async def test_refused_destinations_are_403_and_nothing_is_dialled(
    live: LiveService, destination: str, reason: str
) -> None:
    call_id = await answered(live)
    media_leg = leg_id(call_id, "media")

    async def own_legs_up() -> bool:  # the call's media leg may follow its answer
        return media_leg in {c.id for c in await live.pbx.ari.list_channels()}

    await until(own_legs_up)
    channels_before = {c.id for c in await live.pbx.ari.list_channels()}
    resp = await control(live, call_id, {"type": "transfer", "destination": destination})
    assert resp.status == 403
    assert (await resp.json())["error"] == "Destination not allowed"
    (security,) = await events_of(live, call_id, "security")
    assert security["reason"] == reason
    assert destination not in str(security) or not destination.startswith("+")
    assert {c.id for c in await live.pbx.ari.list_channels()} <= channels_before
    assert (await get_call(live, call_id))["status"] == "in-progress"
    await control(live, call_id, {"type": "end-call"})
    await wait_status(live, call_id, ("ended",), within=20)


async def test_warm_transfer_accepted_by_the_agent(live: LiveService) -> None:
    call_id = await answered(live)
    body = {
        "type": "transfer",
        "destination": "warmaccept",
        "mode": "warm",
        "announcement": "One moment please.",
        "summary": "Invoice question.",
    }
    resp = await control(live, call_id, body)
    assert resp.status == 200, await resp.text()
    ended = await wait_status(live, call_id, ("ended", "failed"), within=30)
    assert (ended["status"], ended["end_reason"]) == ("ended", "transferred")
    assert ended["transferred_to"] == "warmaccept"
    await live.pbx.ari.hangup_channel(call_id)


async def test_warm_transfer_declined_and_the_assistant_says_so(live: LiveService) -> None:
    # A party that stays silent: a talking one would barge in on the apology.
    call_id = await answered(live, SILENT_PARTY)
    body = {"type": "transfer", "destination": "warmdecline", "mode": "warm"}
    resp = await control(live, call_id, body)
    assert resp.status == 200, await resp.text()

    async def apologised() -> bool:
        said = [e["content"] for e in await events_of(live, call_id, "transcript")]
        return any("did not go through" in text for text in said)

    await until(apologised, within=30)
    assert await events_of(live, call_id, "transfer") == [
        {"result": "failed", "detail": "warm-declined"}
    ]
    assert (await get_call(live, call_id))["status"] == "in-progress"
    await control(live, call_id, {"type": "end-call"})
    await wait_status(live, call_id, ("ended",), within=20)


async def test_transfer_with_an_announcement_keeps_the_transcript(live: LiveService) -> None:
    """The party spoke and heard the announcement: both are in the call's messages, and the
    summary does not say the caller was silent."""
    call_id = await answered(live)
    announcement = "I am transferring you to our sales team now."

    async def party_spoke() -> bool:
        return any(t["role"] == "user" for t in await events_of(live, call_id, "transcript"))

    await until(party_spoke, within=30)
    body = {"type": "transfer", "destination": "sales", "announcement": announcement}
    resp = await control(live, call_id, body)
    assert resp.status == 200, await resp.text()
    ended = await wait_status(live, call_id, ("ended", "failed"), within=30)
    assert (ended["status"], ended["end_reason"]) == ("ended", "transferred")
    await call_finished(live.service.runner, call_id)
    detail = await get_call(live, call_id)
    messages = detail["messages"]
    assert {"role": "assistant", "content": announcement} in messages, messages
    assert any(m["role"] == "user" and m["content"] for m in messages), messages
    assert "did not speak" not in (detail["summary"] or "")
    await live.pbx.ari.hangup_channel(call_id)
