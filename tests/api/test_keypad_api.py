"""``keypad`` over REST: a bad plan is a 400 with the error body naming the field, a good one is
saved and read back, and a call's dialogue gets it (the defaults without one). ``enabled``
false turns the keypad off, and a call's override can turn it off (or on) for itself."""

from __future__ import annotations

import pytest

from api.conftest import Api
from voicedock.api.models import document
from voicedock.calls.assistants.config import deep_merge
from voicedock.calls.live.config import conversation_config
from voicedock.domain.assistant_config import config_of
from voicedock.pipeline.hearing.keypad import KeypadPlan

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"timeout_seconds": 31}, "keypad.timeout_seconds must be a number of seconds, 0.5-30"),
        ({"timeout_seconds": "3"}, "keypad.timeout_seconds must be a number of seconds"),
        ({"terminator": "5"}, 'keypad.terminator must be one of "#", "*", or null'),
        ({"max_digits": 0}, "keypad.max_digits must be between 1 and 64"),
        ({"max_digits": True}, "keypad.max_digits must be an integer"),
        ({"digits": 4}, "keypad: unknown field(s): digits"),
        ("#", "keypad must be a JSON object"),
        ({"enabled": "no"}, "keypad.enabled must be true or false"),
        ({"enabled": 0}, "keypad.enabled must be true or false"),
    ],
)
async def test_a_bad_plan_is_a_400_naming_the_field(api: Api, plan: object, message: str) -> None:
    resp = await api.client.post(
        "/assistants", json={"name": "Desk", "keypad": plan}, headers=api.auth()
    )
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "Bad request"
    assert "keypad" in body["message"]
    assert message in body["message"]


async def test_a_plan_is_saved_and_read_back(api: Api) -> None:
    h = api.auth()
    plan = {"timeout_seconds": 2.5, "terminator": None, "max_digits": 6}
    created = await api.client.post("/assistants", json={"name": "Desk", "keypad": plan}, headers=h)
    assert created.status == 201, await created.text()
    body = await created.json()
    assert body["keypad"] == plan
    read = await api.client.get(f"/assistants/{body['id']}", headers=h)
    assert (await read.json())["keypad"] == plan


def test_the_dialogue_gets_the_plan_and_the_defaults_without_one() -> None:
    plan = {"timeout_seconds": 2.5, "terminator": None, "max_digits": 6}
    assert conversation_config(config_of({"keypad": plan}), 8000).keypad == KeypadPlan(2.5, None, 6)
    assert conversation_config(config_of({"keypad": {"max_digits": 4}}), 8000).keypad == KeypadPlan(
        3.0, "#", 4
    )
    assert conversation_config(config_of({}), 8000).keypad == KeypadPlan(3.0, "#", 16)


async def test_the_keypad_turned_off_is_saved_read_back_and_patched(api: Api) -> None:
    h = api.auth()
    plan = {"enabled": False, "max_digits": 6}
    created = await api.client.post("/assistants", json={"name": "Desk", "keypad": plan}, headers=h)
    assert created.status == 201, await created.text()
    body = await created.json()
    assert body["keypad"] == plan
    path = f"/assistants/{body['id']}"
    assert (await (await api.client.get(path, headers=h)).json())["keypad"] == plan
    bad = await api.client.patch(path, json={"keypad": {"enabled": "off"}}, headers=h)
    assert bad.status == 400
    assert await bad.json() == {
        "error": "Bad request",
        "message": "keypad.enabled must be true or false",
    }
    on = await api.client.patch(path, json={"keypad": {"enabled": True}}, headers=h)
    assert on.status == 200, await on.text()
    assert (await (await api.client.get(path, headers=h)).json())["keypad"]["enabled"] is True


async def test_the_document_shows_the_switch(api: Api) -> None:
    served = await (await api.client.get("/openapi.json")).json()
    enabled = served["components"]["schemas"]["Keypad"]["properties"]["enabled"]["anyOf"][0]
    assert enabled["type"] == "boolean"
    assert enabled["default"] is True
    assert served == document.openapi_document()


def test_the_dialogue_gets_the_switch_and_an_override_turns_it_off() -> None:
    saved = {"keypad": {"timeout_seconds": 5, "max_digits": 12}}
    assert conversation_config(config_of(saved), 8000).keypad.enabled is True
    off = deep_merge(saved, {"keypad": {"enabled": False}})
    assert conversation_config(config_of(off), 8000).keypad == KeypadPlan(
        5.0, "#", 12, enabled=False
    )
    on = deep_merge(off, {"keypad": {"enabled": True}})
    assert conversation_config(config_of(on), 8000).keypad.enabled is True
