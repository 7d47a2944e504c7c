"""Per-call options of ``POST /calls/outbound``: ``metadata`` (stored, returned, in every
webhook about the call), ``variables`` and scheduled calls (run on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.conftest import Api, serving
from api.contract import is_valid
from fakes.world import DESTINATION, SUPPORT_ID, make_settings
from voicedock.calls.outbound_request import METADATA_MAX_BYTES, METADATA_MAX_KEYS
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
    assert call.assistant_config["first_message"] == "Hello Ann, about invoice A-17."
    assert call.assistant_config["system_prompt"] == "You call Ann for {{company}}."
    assert call.assistant_config["voicemail_message"] == "Please call back about A-17."
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
