"""``phone_menu`` over REST: a bad plan is a 400 naming the field, on a saved assistant and on
a call's own configuration; a good one is saved, read back and patched; the OpenAPI document
describes it."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api
from api.test_calls_api import DESTINATION, post_outbound
from voicedock.api.models import document

pytestmark = pytest.mark.unit

PLAN = {"goal": "Reach the appointments desk.", "max_wait_seconds": 600}
BAD: list[tuple[dict[str, Any], str]] = [
    ({"goal": ""}, "phone_menu.goal must be a text of 1-1000 characters"),
    ({"goal": " \n "}, "phone_menu.goal must be a text of 1-1000 characters"),
    ({"goal": "x" * 1001}, "phone_menu.goal must be a text of 1-1000 characters"),
    ({"max_wait_seconds": 60}, "phone_menu.goal must be a text"),
    ({**PLAN, "max_wait_seconds": 5}, "phone_menu.max_wait_seconds must be between 10 and 3600"),
    ({**PLAN, "max_wait_seconds": 1.5}, "phone_menu.max_wait_seconds must be an integer"),
    ({**PLAN, "keys": "2"}, "phone_menu: unknown field(s): keys"),
]


@pytest.mark.parametrize(("plan", "message"), BAD)
async def test_a_bad_plan_is_a_400_naming_the_field(
    api: Api, plan: dict[str, Any], message: str
) -> None:
    resp = await api.client.post(
        "/assistants", json={"name": "Desk", "phone_menu": plan}, headers=api.auth()
    )
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert message in body["message"]
    listed = await api.client.get("/assistants", headers=api.auth())
    assert all(a["name"] != "Desk" for a in (await listed.json())["assistants"])


@pytest.mark.parametrize(("plan", "message"), BAD[:1] + BAD[4:5])
async def test_a_calls_own_bad_plan_is_refused_before_dialling(
    api: Api, plan: dict[str, Any], message: str
) -> None:
    assistant = {"first_message": "Hello.", "phone_menu": plan}
    resp = await post_outbound(api, {"destination": DESTINATION, "assistant": assistant})
    assert resp.status == 400
    assert "phone_menu." in (await resp.json())["message"]
    assert api.pbx.originated == []


async def test_a_plan_is_saved_read_back_and_patched(api: Api) -> None:
    h = api.auth()
    created = await api.client.post(
        "/assistants", json={"name": "Desk", "phone_menu": {"goal": "  Billing.  "}}, headers=h
    )
    assert created.status == 201, await created.text()
    body = await created.json()
    assert body["phone_menu"] == {"goal": "Billing."}
    path = f"/assistants/{body['id']}"
    patched = await api.client.patch(path, json={"phone_menu": PLAN}, headers=h)
    assert patched.status == 200, await patched.text()
    assert (await (await api.client.get(path, headers=h)).json())["phone_menu"] == PLAN


async def test_a_speech_to_speech_assistant_cannot_navigate_menus(api: Api) -> None:
    assistant = {"name": "Realtime", "provider": "xai_realtime", "phone_menu": PLAN}
    resp = await api.client.post("/assistants", json=assistant, headers=api.auth())
    assert resp.status == 400
    body = await resp.json()
    assert "phone_menu needs a pipeline assistant" in body["message"], body


def test_the_document_describes_the_plan() -> None:
    schemas = document.openapi_document()["components"]["schemas"]
    plan = schemas["PhoneMenu"]
    assert plan["required"] == ["goal"]
    assert plan["properties"]["goal"]["maxLength"] == 1000
    wait = plan["properties"]["max_wait_seconds"]
    assert (wait["minimum"], wait["maximum"], wait["default"]) == (10, 3600, 900)
    assert plan["additionalProperties"] is False
