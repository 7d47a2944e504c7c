"""``consent_plan`` over REST: a bad plan is a 400 with the error body naming the field, a good
one is saved, read back and patched, and the OpenAPI document describes it."""

from __future__ import annotations

import pytest

from api.conftest import Api
from voicedock.api.models import document

pytestmark = pytest.mark.unit

PLAN = {
    "mode": "opt_out_keypad",
    "message": "This call is recorded. Press 9 to continue without recording.",
    "key": "9",
    "timeout_seconds": 5,
    "on_refusal": "no_recording",
}


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({**PLAN, "mode": "ask"}, "consent_plan.mode must be one of"),
        ({**PLAN, "timeout_seconds": 0}, "consent_plan.timeout_seconds must be a number"),
        ({**PLAN, "key": 9}, "consent_plan.key must be one of"),
        ({**PLAN, "on_refusal": "hang_up"}, "consent_plan.on_refusal must be one of"),
        ({"mode": "announce"}, "consent_plan.message must be a text"),
        ({**PLAN, "voice": "x"}, "consent_plan: unknown field(s): voice"),
    ],
)
async def test_a_bad_plan_is_a_400_naming_the_field(api: Api, plan: object, message: str) -> None:
    resp = await api.client.post(
        "/assistants", json={"name": "Desk", "consent_plan": plan}, headers=api.auth()
    )
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert message in body["message"]


async def test_a_plan_is_saved_read_back_and_patched(api: Api) -> None:
    h = api.auth()
    created = await api.client.post(
        "/assistants", json={"name": "Desk", "consent_plan": PLAN}, headers=h
    )
    assert created.status == 201, await created.text()
    body = await created.json()
    assert body["consent_plan"] == PLAN
    path = f"/assistants/{body['id']}"
    assert (await (await api.client.get(path, headers=h)).json())["consent_plan"] == PLAN
    announce = {"mode": "announce", "message": "This call is handled by an AI assistant."}
    patched = await api.client.patch(path, json={"consent_plan": announce}, headers=h)
    assert patched.status == 200, await patched.text()
    assert (await (await api.client.get(path, headers=h)).json())["consent_plan"]["mode"] == (
        "announce"
    )


def test_the_document_describes_the_plan() -> None:
    schemas = document.openapi_document()["components"]["schemas"]
    plan = schemas["ConsentPlan"]
    assert set(plan["required"]) == {"mode", "message"}
    assert set(plan["properties"]["mode"]["enum"]) == {
        "announce",
        "opt_out_keypad",
        "opt_in_keypad",
    }
    assert plan["properties"]["key"]["anyOf"][0]["default"] == "9"
    assert plan["additionalProperties"] is False
