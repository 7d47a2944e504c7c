"""``redaction_plan`` over REST: a bad plan is a 400 naming the field (a custom pattern RE2
refuses, too many or too long patterns), a good one is saved and read back, an organization's
default plan is taken by its new assistants, and a call's dialogue gets its redactor."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api
from api.test_organization_api import admin, patch
from voicedock.calls.live.config import conversation_config
from voicedock.domain.assistant_config import (
    REDACTION_PATTERN_MAX,
    REDACTION_PATTERNS_MAX,
    config_of,
)

pytestmark = pytest.mark.unit

PLAN = {
    "categories": ["card_number", "email", "date_of_birth"],
    "custom_patterns": [{"name": "member_id", "regex": r"mem-\d{6}"}],
    "model_sees": "clear",
}


def pattern(regex: str, name: str = "p") -> dict[str, Any]:
    return {"custom_patterns": [{"name": name, "regex": regex}]}


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"categories": ["card_number", "passport"]}, "redaction_plan.categories must be a list"),
        ({"categories": "email"}, "redaction_plan.categories must be a list"),
        ({"model_sees": "some"}, 'redaction_plan.model_sees must be "redacted" or "clear"'),
        ({"region": "usa"}, "redaction_plan.region must be a country code"),
        ({"mode": "x"}, "redaction_plan: unknown field(s): mode"),
        ("all", "redaction_plan must be a JSON object"),
        (pattern(r"(a)\1"), "redaction_plan.custom_patterns[0].regex is not a regular expression"),
        (pattern(r"(?=a)b"), "redaction_plan.custom_patterns[0].regex is not a regular expression"),
        (pattern("a" * (REDACTION_PATTERN_MAX + 1)), "custom_patterns[0].regex must be a text"),
        (pattern("a", name="Bad Name"), "redaction_plan.custom_patterns[0].name must be"),
        (
            {"custom_patterns": [{"name": f"p{i}", "regex": "a"} for i in range(11)]},
            f"at most {REDACTION_PATTERNS_MAX} patterns",
        ),
        ({"custom_patterns": [{"name": "p", "regex": "a", "flags": "i"}]}, "unknown field(s)"),
    ],
)
async def test_a_bad_plan_is_a_400_naming_the_field(api: Api, plan: object, message: str) -> None:
    resp = await api.client.post(
        "/assistants", json={"name": "Desk", "redaction_plan": plan}, headers=api.auth()
    )
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error", "message"}
    # RE2's refusal is what no schema states: a title of its own.
    assert body["error"] == ("Invalid pattern" if "RE2" in body["message"] else "Bad request")
    assert "redaction_plan" in body["message"]
    assert message in body["message"]


async def test_a_plan_is_saved_and_read_back(api: Api) -> None:
    h = api.auth()
    created = await api.client.post(
        "/assistants", json={"name": "Desk", "redaction_plan": PLAN}, headers=h
    )
    assert created.status == 201, await created.text()
    body = await created.json()
    assert body["redaction_plan"] == PLAN
    read = await api.client.get(f"/assistants/{body['id']}", headers=h)
    assert (await read.json())["redaction_plan"] == PLAN


async def test_a_new_assistant_takes_the_organizations_default_plan(api: Api) -> None:
    defaults = {"assistant_defaults": {"redaction_plan": PLAN}}
    status, body = await patch(api, defaults, await admin(api))
    assert status == 200, body
    assert body["assistant_defaults"]["redaction_plan"] == PLAN
    created = await api.client.post("/assistants", json={"name": "Desk"}, headers=api.auth())
    assert (await created.json())["redaction_plan"] == PLAN
    own = {"categories": ["iban"]}
    created = await api.client.post(
        "/assistants", json={"name": "Bank", "redaction_plan": own}, headers=api.auth()
    )
    assert (await created.json())["redaction_plan"] == own


def test_the_dialogue_gets_the_redactor_and_what_the_model_sees() -> None:
    cfg = conversation_config(config_of({"redaction_plan": PLAN}), 8000)
    assert cfg.redact("mail jane@example.com, id MEM-123456") == "mail [email], id [member_id]"
    assert cfg.for_model("mail jane@example.com") == "mail jane@example.com"  # clear
    redacted = conversation_config(config_of({"redaction_plan": {"categories": ["email"]}}), 8000)
    assert redacted.for_model("mail jane@example.com") == "mail [email]"
    plain = conversation_config(config_of({}), 8000)
    assert plain.redactor is None
    assert plain.redact("mail jane@example.com") == "mail jane@example.com"
