"""User paths through REST (FakePbx): cancelling a ringing call, the ring timeout, idempotency
keys that expire, the analysis method, an assistant's media format and the status filter."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.conftest import Api
from api.test_call_events_api import parse_stream
from api.test_calls_api import place, post_outbound
from api.test_webhooks_delivery_api import lab_api  # noqa: F401 - the fixture
from fakes.pbx import FakePbx
from fakes.world import ACME, DESTINATION, SUPPORT_ID, org_id
from voicedock.calls.runner import one_call
from voicedock.errors import PbxError
from voicedock.pbx.base import PbxEventKind
from webhooks.receiver import Receiver, wait_until

pytestmark = pytest.mark.unit

OK = {"success": True, "message": "Command sent successfully"}


async def control(api: Api, call_id: str, body: Any) -> Any:
    return await api.client.post(f"/calls/{call_id}/control", json=body, headers=api.auth())


async def detail(api: Api, call_id: str) -> dict[str, Any]:
    resp = await api.client.get(f"/calls/{call_id}", headers=api.auth())
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


# -- end-call on a ringing call -----------------------------------------------------------


async def test_end_call_on_a_ringing_call_cancels_it(api: Api) -> None:
    call_id = await place(api)
    await api.pbx.emit(call_id, PbxEventKind.RINGING)
    assert (await detail(api, call_id))["status"] == "connecting"
    resp = await control(api, call_id, {"type": "end-call"})
    assert resp.status == 200
    assert await resp.json() == OK
    assert api.pbx.hangups == [(call_id, "normal")]  # the PBX leg is hung up
    call = await detail(api, call_id)
    assert call["status"] == "ended"
    assert call["end_reason"] == "cancelled"
    assert call["error"] is None
    assert call["started_at"] is None
    assert call["ended_at"] is not None
    statuses = [e["data"] for e in call["events"] if e["type"] == "status"]
    assert statuses[-1] == {"from": "connecting", "to": "ended", "end_reason": "cancelled"}
    listed = await (await api.client.get("/calls?status=ended", headers=api.auth())).json()
    assert [c["id"] for c in listed["calls"]] == [call_id]
    again = await control(api, call_id, {"type": "end-call"})
    assert again.status == 409  # over now


async def test_a_cancel_the_pbx_cannot_carry_out_is_503(api: Api) -> None:
    call_id = await place(api)
    api.pbx.fail_commands = PbxError("ARI down")
    resp = await control(api, call_id, {"type": "end-call"})
    assert resp.status == 503
    assert set(await resp.json()) == {"error", "message"}
    api.pbx.fail_commands = None
    await api.pbx.hang_up_remote(call_id, 16)  # when the PBX reports the leg gone
    call = await detail(api, call_id)
    assert (call["status"], call["end_reason"], call["error"]) == ("ended", "cancelled", None)


async def test_an_answer_crossing_the_cancel_never_leaves_the_call_up(api: Api) -> None:
    call_id = await place(api)
    hang_up = api.pbx.hangup
    answers = [call_id]

    async def answered_meanwhile(cid: str, reason: str = "normal") -> None:
        if answers:
            await api.pbx.answer(answers.pop())
        await hang_up(cid, reason)

    api.pbx.hangup = answered_meanwhile  # type: ignore[method-assign]
    resp = await control(api, call_id, {"type": "end-call"})
    assert resp.status == 200
    call = await detail(api, call_id)
    assert (call["status"], call["end_reason"]) == ("ended", "cancelled")
    assert "in-progress" not in [e["data"]["to"] for e in call["events"] if e["type"] == "status"]
    assert len(api.pbx.hangups) == 2  # the answered leg was hung up again


async def test_the_cancel_reaches_the_event_stream(api: Api) -> None:
    call_id = await place(api)
    resp = await api.client.get(f"/calls/{call_id}/events", headers=api.auth())
    assert resp.status == 200

    async def cancel() -> None:
        await asyncio.sleep(0.1)
        assert (await control(api, call_id, {"type": "end-call"})).status == 200

    _, text = await asyncio.gather(cancel(), asyncio.wait_for(resp.text(), 10))
    status = [m["data"]["data"] for m in parse_stream(text) if m.get("event") == "status"]
    assert status, text
    assert status[-1]["to"] == "ended"
    assert status[-1]["end_reason"] == "cancelled"


async def test_the_cancel_reaches_the_webhook(
    lab_api: tuple[TestClient[Any, Any], FakePbx, str, str],  # noqa: F811
) -> None:
    client, _pbx, acme, _ = lab_api
    auth = {"Authorization": f"Bearer {acme}"}
    receiver = Receiver(secret="")
    await receiver.start()
    try:
        created = await client.post(
            "/webhooks", json={"url": receiver.url, "event_types": ["status-update"]}, headers=auth
        )
        receiver.secret = (await created.json())["secret"]
        placed = await client.post(
            "/calls/outbound",
            json={"destination": DESTINATION, "assistant_id": SUPPORT_ID},
            headers=auth,
        )
        call_id = (await placed.json())["call_id"]
        resp = await client.post(
            f"/calls/{call_id}/control", json={"type": "end-call"}, headers=auth
        )
        assert resp.status == 200
        await wait_until(lambda: len(receiver.accepted) == 2)
    finally:
        await receiver.stop()
    last = json.loads(receiver.requests[-1].body)
    assert last["data"]["status"] == "ended"
    assert last["data"]["previous_status"] == "connecting"
    assert last["data"]["end_reason"] == "cancelled"


# -- ring_timeout_seconds -------------------------------------------------------------------


async def test_ring_timeout_reaches_the_pbx(api: Api) -> None:
    for extra in ({}, {"ring_timeout_seconds": 5}, {"ring_timeout_seconds": 120}):
        await api.pbx.hang_up_remote(await place(api, **extra), 19)  # frees the number
    assert [r.timeout_seconds for r in api.pbx.originated] == [30, 5, 120]


@pytest.mark.parametrize("value", [4, 121, 0, -1, "30", 30.5, True, [30], {"s": 30}])
async def test_bad_ring_timeout_is_400(api: Api, value: Any) -> None:
    resp = await post_outbound(
        api, {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "ring_timeout_seconds": value}
    )
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert "ring_timeout_seconds" in body["message"]
    assert api.pbx.originated == []


async def test_a_call_left_ringing_past_its_timeout_ends_no_answer(api: Api) -> None:
    api.service.engine.ringing.grace = -4.8  # the PBX did not time it out: the engine does
    call_id = await place(api, ring_timeout_seconds=5)

    async def ended() -> bool:
        return bool((await detail(api, call_id))["status"] == "failed")

    async with asyncio.timeout(5):
        while not await ended():
            await asyncio.sleep(0.05)
    call = await detail(api, call_id)
    assert call["error"] == "no-answer"
    assert api.pbx.hangups == [(call_id, "normal")]


# -- idempotency keys expire after 24 h -------------------------------------------------------


ACME_ID = org_id(ACME)


async def _age_record(api: Api, key: str, age: timedelta) -> None:
    """Re-store the key's record as if it had been written ``age`` ago."""
    async with api.service.store.transaction() as tx:
        record = await tx.get_idempotency(ACME_ID, key)
        assert record is not None
        await tx.delete_idempotency_before(datetime.now(UTC) + timedelta(days=1))
        await tx.put_idempotency(replace(record, created_at=datetime.now(UTC) - age))


async def test_a_replay_within_24_hours_is_the_first_answer(api: Api) -> None:
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    first = await (await post_outbound(api, body, **{"Idempotency-Key": "day-1"})).json()
    await _age_record(api, "day-1", timedelta(hours=23, minutes=59))
    replay = await post_outbound(api, body, **{"Idempotency-Key": "day-1"})
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert await replay.json() == first
    assert len(api.pbx.originated) == 1


async def test_a_replay_after_24_hours_is_a_new_request(api: Api) -> None:
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    first = await (await post_outbound(api, body, **{"Idempotency-Key": "day-1"})).json()
    await _age_record(api, "day-1", timedelta(hours=24, seconds=1))
    later = await post_outbound(api, body, **{"Idempotency-Key": "day-1"})
    assert later.status == 200
    assert "Idempotent-Replayed" not in later.headers
    second = await later.json()
    assert second["call_id"] != first["call_id"]
    assert len(api.pbx.originated) == 2
    replay = await post_outbound(api, body, **{"Idempotency-Key": "day-1"})
    assert (await replay.json())["call_id"] == second["call_id"]  # the new record holds


async def test_expired_records_are_purged(api: Api) -> None:
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    await post_outbound(api, body, **{"Idempotency-Key": "old"})
    await _age_record(api, "old", timedelta(days=2))
    await post_outbound(api, body, **{"Idempotency-Key": "new"})  # another key
    async with api.service.store.transaction() as tx:
        assert await tx.get_idempotency(ACME_ID, "old") is None
        assert await tx.get_idempotency(ACME_ID, "new") is not None


# -- analysis_result.method ---------------------------------------------------------------------


async def test_analysis_method_is_returned(api: Api) -> None:
    call_id = await place(api)
    await api.pbx.answer(call_id)
    await api.pbx.hang_up_remote(call_id)
    async with api.service.store.transaction() as tx:
        call = await tx.get_call_for_update(call_id)
        assert call is not None
        call.analysis_result = {"summary": "Booked Monday.", "sentiment": 8, "method": "llm"}
        await tx.update_call(call)
    body = await detail(api, call_id)
    assert body["analysis_result"] == {"summary": "Booked Monday.", "sentiment": 8, "method": "llm"}


# -- an assistant's media_format ----------------------------------------------------------------


@pytest.mark.parametrize("media_format", ["ulaw", "alaw", "slin16"])
async def test_media_format_of_an_assistant_reaches_the_call_media(
    api: Api, media_format: str
) -> None:
    resp = await post_outbound(
        api,
        {"destination": DESTINATION, "assistant": {"name": "Pat", "media_format": media_format}},
    )
    assert resp.status == 200, await resp.text()
    call = await api.service.store.get_call(None, (await resp.json())["call_id"])
    assert call is not None
    assert call.assistant_config.media_format == media_format
    # What the runner passes to ``call_media(media_format=...)`` once the call is answered.
    assert await one_call.media_format(api.service.store, call) == media_format
    hybrid = await place(
        api, assistant_id=SUPPORT_ID, assistant_override={"media_format": media_format}
    )
    hybrid_call = await api.service.store.get_call(None, hybrid)
    assert hybrid_call is not None
    assert await one_call.media_format(api.service.store, hybrid_call) == media_format


@pytest.mark.parametrize("value", ["opus", "ULAW", "slin", "", 8000, True])
async def test_bad_media_format_is_400(api: Api, value: Any) -> None:
    resp = await post_outbound(
        api,
        {"destination": DESTINATION, "assistant": {"name": "Pat", "media_format": value}},
    )
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert "media_format" in body["message"]
    assert api.pbx.originated == []


async def test_a_saved_assistant_takes_a_media_format(api: Api) -> None:
    resp = await api.client.post(
        "/assistants", json={"name": "Wideband", "media_format": "slin16"}, headers=api.auth()
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["media_format"] == "slin16"
    bad = await api.client.post(
        "/assistants", json={"name": "Odd", "media_format": "opus"}, headers=api.auth()
    )
    assert bad.status == 400


# -- the status filter ---------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["dialing", "ringing"])
async def test_dialing_is_not_a_list_status_and_the_400_says_what_to_use(
    api: Api, word: str
) -> None:
    resp = await api.client.get(f"/calls?status={word}", headers=api.auth())
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert "status=connecting" in body["message"]
    connecting = await api.client.get("/calls?status=connecting", headers=api.auth())
    assert connecting.status == 200
