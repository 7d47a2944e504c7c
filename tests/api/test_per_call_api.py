"""Per-call options of ``POST /calls/outbound``: ``metadata`` (stored, returned, in every
webhook about the call), ``variables`` and scheduled calls (run on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.conftest import Api, serving
from api.contract import is_valid
from fakes.world import ACME, DESTINATION, GLOBEX_ASSISTANT_ID, SUPPORT_ID, make_settings
from pg_server import fresh_database
from voicedock.calls.outbound.request import METADATA_MAX_BYTES, METADATA_MAX_KEYS
from voicedock.config import OrganizationLimitSettings
from voicedock.organizations.settings import set_limits
from webhooks.receiver import Receiver, wait_until

pytestmark = pytest.mark.unit

METADATA = {"crm_id": "c-42", "tags": ["vip", "renewal"], "score": 0.8, "nested": {"a": {"b": 1}}}


async def post(api: Api, **fields: Any) -> Any:
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID, **fields}
    return await api.client.post("/calls/outbound", json=body, headers=api.auth())


BAD_METADATA = [
    ([1, 2], "metadata must be a JSON object"),
    ("text", "metadata must be a JSON object"),
    ({"x": "y" * METADATA_MAX_BYTES}, f"metadata must be at most {METADATA_MAX_BYTES} bytes"),
    ({str(i): i for i in range(METADATA_MAX_KEYS + 1)}, "keys in all"),
    ({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}, "levels deep"),
    ({"a": [[[[[[1]]]]]]}, "levels deep"),
]


@pytest.mark.parametrize(("metadata", "message"), BAD_METADATA)
async def test_bad_metadata_is_400_naming_the_field(api: Api, metadata: Any, message: str) -> None:
    resp = await post(api, metadata=metadata)
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert message in body["message"]
    assert api.pbx.originated == []


async def test_metadata_is_stored_and_returned(api: Api) -> None:
    resp = await post(api, metadata=METADATA)
    assert resp.status == 200, await resp.text()
    call_id = (await resp.json())["call_id"]
    plain = (await (await post(api)).json())["call_id"]
    await api.pbx.answer(call_id)
    await api.pbx.hang_up_remote(call_id)  # an update of the call keeps it
    detail = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    assert detail["metadata"] == METADATA
    assert detail["status"] == "ended"
    assert is_valid(detail, "Call")
    listed = await (await api.client.get("/calls", headers=api.auth())).json()
    by_id = {item["id"]: item for item in listed["calls"]}
    assert by_id[call_id]["metadata"] == METADATA
    assert by_id[plain]["metadata"] is None
    assert is_valid(listed, "CallList")


def test_metadata_is_in_the_documented_request() -> None:
    request = "OutboundCallRequest"
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "metadata": METADATA}
    assert is_valid(body, request)
    assert not is_valid({**body, "metadata": [1]}, request)


async def test_every_webhook_of_the_call_carries_its_metadata(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'api.db'}")
    settings.egress.allow_loopback = True
    settings.webhooks.poll_interval_ms = 50
    receiver = Receiver(secret="")
    await receiver.start()
    try:
        async with serving(settings) as api:
            created = await api.client.post(
                "/webhooks", json={"url": receiver.url}, headers=api.auth()
            )
            assert created.status == 201, await created.text()
            receiver.secret = (await created.json())["secret"]
            resp = await post(api, metadata=METADATA)
            call_id = (await resp.json())["call_id"]
            await api.pbx.answer(call_id)
            await api.pbx.hang_up_remote(call_id)
            plain = (await (await post(api)).json())["call_id"]
            await api.pbx.hang_up_remote(plain, 17, 486)
            await wait_until(lambda: len(receiver.accepted) >= 7)
    finally:
        await receiver.stop()
    assert receiver.rejected == 0
    payloads = [json.loads(r.body) for r in receiver.requests]
    ours = [p for p in payloads if p["call_id"] == call_id]
    assert sorted(p["type"] for p in ours) == [
        "end-of-call-report",
        "status-update",
        "status-update",
        "status-update",
    ]
    assert all(p["metadata"] == METADATA for p in ours)
    others = [p for p in payloads if p["call_id"] == plain]
    assert others
    assert all("metadata" not in p for p in others)


BAD_VARIABLES = [
    ([1], "variables must be an object"),
    ({"name": 5}, "values strings"),
    ({"bad name": "x"}, "names are identifiers"),
    ({"name": "x" * 1001}, "at most 1000 characters"),
    ({f"v{i}": "x" for i in range(51)}, "at most 50 entries"),
]


@pytest.mark.parametrize(("variables", "message"), BAD_VARIABLES)
async def test_bad_variables_are_400_naming_the_field(
    api: Api, variables: Any, message: str
) -> None:
    resp = await post(api, variables=variables)
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert message in body["message"]
    assert api.pbx.originated == []


async def test_variables_fill_the_placeholders_as_a_campaign_does(api: Api) -> None:
    resp = await post(
        api,
        assistant_override={
            "first_message": "Hello {{name}}, about invoice {{ invoice }}.",
            "system_prompt": "You call {{name}} for {{company}}.",
            "voicemail_message": "Please call back about {{invoice}}.",
        },
        context="Invoice {{invoice}} is due; {{unknown}} stays.",
        variables={"name": "Ann", "invoice": "A-17"},
    )
    assert resp.status == 200, await resp.text()
    call = await api.service.store.get_call(None, (await resp.json())["call_id"])
    assert call is not None
    assert call.first_message == "Hello Ann, about invoice A-17."
    assert call.assistant_config.first_message == "Hello Ann, about invoice A-17."
    assert call.assistant_config.system_prompt == "You call Ann for {{company}}."
    assert call.assistant_config.voicemail_message == "Please call back about A-17."
    assert call.context == "Invoice A-17 is due; {{unknown}} stays."


async def test_the_saved_assistants_placeholders_are_filled_and_it_stays_as_saved(
    api: Api,
) -> None:
    created = await api.client.post(
        "/assistants",
        json={"name": "Reminder", "first_message": "Hi {{name}}!"},
        headers=api.auth(),
    )
    assert created.status == 201, await created.text()
    assistant_id = (await created.json())["id"]
    resp = await post(api, assistant_id=assistant_id, variables={"name": "Bob"})
    plain = await post(api, assistant_id=assistant_id)
    calls = [
        await api.service.store.get_call(None, (await r.json())["call_id"]) for r in (resp, plain)
    ]
    assert [c.first_message if c else None for c in calls] == ["Hi Bob!", "Hi {{name}}!"]
    saved = await (await api.client.get(f"/assistants/{assistant_id}", headers=api.auth())).json()
    assert saved["first_message"] == "Hi {{name}}!"


def moment(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def status_of(api: Api, call_id: str) -> dict[str, Any]:
    resp = await api.client.get(f"/calls/{call_id}", headers=api.auth())
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def until_status(api: Api, call_id: str, wanted: str, within: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while (call := await status_of(api, call_id))["status"] != wanted:
            await asyncio.sleep(0.05)
    return call


# Numbers are seconds from when the test runs (collection may come minutes earlier).
BAD_SCHEDULES = [
    ({"scheduled_at": "tomorrow"}, "scheduled_at must be an ISO 8601 date-time"),
    ({"scheduled_at": "2030-01-01T10:00:00"}, "with a time zone"),
    ({"scheduled_at": [1893456000]}, "scheduled_at must be an ISO 8601 date-time"),
    ({"scheduled_at": -3600}, "scheduled_at must not be in the past"),
    ({"scheduled_at": 31 * 86400}, "at most 30 days ahead"),
    ({"latest_at": 60}, "latest_at needs scheduled_at"),
    ({"scheduled_at": 60, "latest_at": 30}, "latest_at must be after"),
    ({"scheduled_at": 60, "latest_at": "2030-13-01T00:00:00Z"}, "latest_at is not"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_SCHEDULES)
async def test_bad_schedules_are_400_naming_the_field(
    api: Api, fields: dict[str, Any], message: str
) -> None:
    when = {k: moment(v) if isinstance(v, int) else v for k, v in fields.items()}
    resp = await post(api, **when)
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert message in body["message"]
    listed = await (await api.client.get("/calls", headers=api.auth())).json()
    assert listed["calls"] == []  # nothing stored


async def test_a_scheduled_call_is_stored_listed_and_dialed_at_its_time(api: Api) -> None:
    at = moment(1.5)
    resp = await post(api, scheduled_at=at, metadata={"k": "v"})
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["status"] == "scheduled"
    assert body["scheduled_at"] == at[:23] + "Z"
    assert is_valid(body, "OutboundCallResponse")
    call_id = body["call_id"]
    assert api.pbx.originated == []
    listed = await (await api.client.get("/calls?status=scheduled", headers=api.auth())).json()
    assert [c["id"] for c in listed["calls"]] == [call_id]
    assert listed["calls"][0]["scheduled_at"] == body["scheduled_at"]
    assert is_valid(listed, "CallList")
    other = await api.client.get("/calls?status=scheduled", headers=api.auth(api.globex_key))
    assert (await other.json())["calls"] == []
    call = await until_status(api, call_id, "connecting")
    dialed_at = datetime.now(UTC)
    assert dialed_at >= datetime.fromisoformat(at)
    assert [o.call_id for o in api.pbx.originated] == [call_id]
    assert call["assistant_phone"] is not None
    assert call["metadata"] == {"k": "v"}
    assert [e["data"]["to"] for e in call["events"] if e["type"] == "status"] == [
        "scheduled",
        "connecting",
    ]
    await api.pbx.answer(call_id)
    await api.pbx.hang_up_remote(call_id)
    assert (await status_of(api, call_id))["status"] == "ended"
    assert len(api.pbx.originated) == 1  # dialed once


async def test_end_call_cancels_a_scheduled_call_before_it_is_dialed(api: Api) -> None:
    resp = await post(api, scheduled_at=moment(1.0))
    call_id = (await resp.json())["call_id"]
    say = await api.client.post(
        f"/calls/{call_id}/control", json={"type": "say", "content": "hi"}, headers=api.auth()
    )
    assert say.status == 409  # only end-call is taken before the call is dialed
    ended = await api.client.post(
        f"/calls/{call_id}/control", json={"type": "end-call"}, headers=api.auth()
    )
    assert ended.status == 200, await ended.text()
    call = await status_of(api, call_id)
    assert (call["status"], call["end_reason"]) == ("ended", "cancelled")
    await asyncio.sleep(1.5)  # past its time: still never dialed
    assert api.pbx.originated == []
    assert (await status_of(api, call_id))["status"] == "ended"


async def test_a_call_not_dialed_before_latest_at_ends_expired(api: Api) -> None:
    resp = await post(api, scheduled_at=moment(-50), latest_at=moment(-10))
    assert resp.status == 201, await resp.text()
    call = await until_status(api, (await resp.json())["call_id"], "ended")
    assert call["end_reason"] == "schedule-expired"
    assert api.pbx.originated == []


async def test_a_scheduled_call_waits_for_the_organizations_limit(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'api.db'}")
    settings.limits.organizations = [
        OrganizationLimitSettings(organization=ACME, max_concurrent_calls=1)
    ]
    async with serving(settings) as api:
        busy = (await (await post(api)).json())["call_id"]
        await api.pbx.answer(busy)
        resp = await post(api, scheduled_at=moment(0.2))
        call_id = (await resp.json())["call_id"]
        # Due after it, of another organization: not held back behind it.
        globex = await api.client.post(
            "/calls/outbound",
            json={
                "destination": DESTINATION,
                "assistant_id": GLOBEX_ASSISTANT_ID,
                "scheduled_at": moment(0.4),
            },
            headers=api.auth(api.globex_key),
        )
        assert globex.status == 201, await globex.text()
        globex_id = (await globex.json())["call_id"]
        await asyncio.sleep(1.0)  # due, but the organization is at its limit
        assert (await status_of(api, call_id))["status"] == "scheduled"
        assert [o.call_id for o in api.pbx.originated] == [busy, globex_id]
        await api.pbx.hang_up_remote(busy)
        await until_status(api, call_id, "connecting")
        assert [o.call_id for o in api.pbx.originated] == [busy, globex_id, call_id]


async def test_a_scheduled_call_survives_a_restart(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'api.db'}")
    async with serving(settings) as before:
        resp = await post(before, scheduled_at=moment(1.5))
        call_id = (await resp.json())["call_id"]
    assert before.pbx.originated == []  # stopped before its time
    async with serving(settings) as after:
        await until_status(after, call_id, "connecting")
        assert [o.call_id for o in after.pbx.originated] == [call_id]


@pytest.mark.postgres
async def test_two_nodes_dial_each_scheduled_call_exactly_once(postgres_server: str) -> None:
    dsn = await fresh_database(postgres_server)
    settings = [make_settings(dsn), make_settings(dsn)]
    settings[0].node.id, settings[1].node.id = "node-a", "node-b"
    async with serving(settings[0]) as node_a, serving(settings[1]) as node_b:
        due = moment(1.0)
        ids = []
        for i in range(6):
            api = (node_a, node_b)[i % 2]  # placed through either node
            resp = await post(api, scheduled_at=due, number_id=None)
            assert resp.status == 201, await resp.text()
            ids.append((await resp.json())["call_id"])
        ended: set[str] = set()
        async with asyncio.timeout(15):  # two numbers: each call ends to free one for the next
            while len(ended) < len(ids):
                for node in (node_a, node_b):
                    for request in list(node.pbx.originated):
                        if request.call_id not in ended:
                            ended.add(request.call_id)
                            await node.pbx.hang_up_remote(request.call_id, 17, 486)
                await asyncio.sleep(0.05)
        dialed = [o.call_id for o in (*node_a.pbx.originated, *node_b.pbx.originated)]
        assert sorted(dialed) == sorted(ids)  # every one, once, whichever node claimed it
        owners = {(await status_of(node_a, c))["node"] for c in ids}
        assert owners <= {"node-a", "node-b"}


async def test_a_replayed_schedule_answers_the_same_201_and_stores_one_call(api: Api) -> None:
    # At the organization's bound of calls waiting too: the replay is no new call.
    await set_limits(api.service.store, ACME, max_scheduled_calls=1)
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "scheduled_at": moment(60)}
    headers = {**api.auth(), "Idempotency-Key": "reminder-1"}
    first = await api.client.post("/calls/outbound", json=body, headers=headers)
    again = await api.client.post("/calls/outbound", json=body, headers=headers)
    assert (first.status, again.status) == (201, 201)
    assert await first.json() == await again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    listed = await (await api.client.get("/calls?status=scheduled", headers=api.auth())).json()
    assert len(listed["calls"]) == 1
