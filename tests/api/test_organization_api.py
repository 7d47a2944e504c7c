"""``/organization`` through the real app (SQLite and PostgreSQL): any key reads it, an admin
key sets its display name and the defaults of its new assistants, nobody's key changes its
name or limits (the operator's), bounds are 400; a new assistant takes the defaults it leaves
out and a call placed with it carries them; the operator's limit holds the organization's
calls."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api, serving
from fakes.world import (
    ACME,
    ACME_NUMBERS,
    DESTINATION,
    GLOBEX,
    SUPPORT_ID,
    make_settings,
    org_id,
)
from voicedock.api.api_keys import issue_api_key
from voicedock.config import OrganizationLimitSettings
from voicedock.domain.records import KeyScope
from voicedock.organizations.settings import set_limits

pytestmark = pytest.mark.unit

DEFAULTS = {
    "provider": "xai_realtime",
    "first_message": "Hello from Acme.",
    "system_prompt": "You speak for Acme.",
    "record": True,
    "max_duration_seconds": 600,
}


async def admin(api: Api, organization: str = ACME) -> dict[str, str]:
    key, _ = await issue_api_key(api.service.store, organization, "ops", KeyScope.ADMIN)
    return api.auth(key)


async def patch(api: Api, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    resp = await api.client.patch("/organization", json=body, headers=headers)
    return resp.status, await resp.json()


async def test_any_key_reads_its_organization_and_its_limits(database_url: str) -> None:
    settings = make_settings(database_url)
    settings.limits.organizations = [OrganizationLimitSettings(ACME, max_concurrent_calls=7)]
    settings.rate_limits.organization_calls_per_second = 3
    async with serving(settings) as api:
        read_only, _ = await issue_api_key(api.service.store, ACME, "ro", KeyScope.READ_ONLY)
        resp = await api.client.get("/organization", headers=api.auth(read_only))
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["id"] == org_id(ACME)
        assert body["name"] == ACME
        assert body["display_name"] is None
        assert body["assistant_defaults"] == {}
        limits = body["limits"]
        assert limits["max_concurrent_calls"] == 7
        assert limits["max_concurrent_calls_source"] == "configuration"
        assert limits["calls_per_second"] == 3
        assert limits["trunks"] == ["carrier"]
        assert limits["phone_numbers"] == sorted(ACME_NUMBERS)
        theirs = await (
            await api.client.get("/organization", headers=api.auth(api.globex_key))
        ).json()
        assert theirs["name"] == GLOBEX
        assert theirs["limits"]["max_concurrent_calls"] == 0  # none configured
        assert not set(ACME_NUMBERS) & set(theirs["limits"]["phone_numbers"])


async def test_an_admin_key_sets_the_display_name_and_the_defaults(api: Api) -> None:
    h = await admin(api)
    status, body = await patch(
        api, {"display_name": "Acme B.V.", "assistant_defaults": DEFAULTS}, h
    )
    assert status == 200, body
    assert body["display_name"] == "Acme B.V."
    assert body["assistant_defaults"] == DEFAULTS
    read = await (await api.client.get("/organization", headers=api.auth())).json()
    assert read["assistant_defaults"] == DEFAULTS
    assert read["display_name"] == "Acme B.V."
    # Another organization's is untouched.
    theirs = await (await api.client.get("/organization", headers=api.auth(api.globex_key))).json()
    assert theirs["display_name"] is None
    assert theirs["assistant_defaults"] == {}
    # null clears; a PATCH without a field keeps it.
    status, body = await patch(api, {"display_name": None}, h)
    assert (status, body["display_name"], body["assistant_defaults"]) == (200, None, DEFAULTS)
    status, body = await patch(api, {"assistant_defaults": None}, h)
    assert (status, body["assistant_defaults"]) == (200, {})


async def test_provider_keys_among_the_defaults_are_masked_on_read(api: Api) -> None:
    h = await admin(api)
    defaults = {"provider": "openai", "llm_config": {"api_key": "sk-secret-value-1234"}}
    status, body = await patch(api, {"assistant_defaults": defaults}, h)
    assert status == 200, body
    assert "sk-secret-value-1234" not in str(body)
    # Read back masked and sent again: the stored key stays.
    status, again = await patch(api, {"assistant_defaults": body["assistant_defaults"]}, h)
    assert status == 200, again
    org = await api.service.store.get_organization(org_id(ACME))
    assert org is not None
    assert org.assistant_defaults["llm_config"]["api_key"] == "sk-secret-value-1234"


@pytest.mark.parametrize("scope", [KeyScope.FULL, KeyScope.READ_ONLY])
async def test_only_an_admin_key_changes_the_organization(api: Api, scope: KeyScope) -> None:
    key, _ = await issue_api_key(api.service.store, ACME, "k", scope)
    status, body = await patch(api, {"display_name": "Mine"}, api.auth(key))
    assert status == 403
    assert set(body) == {"error", "message"}
    org = await api.service.store.get_organization(org_id(ACME))
    assert org is not None
    assert org.display_name == ""


@pytest.mark.parametrize(
    "body",
    [
        {"limits": {"max_concurrent_calls": 1000}},
        {"name": "acme2"},
        {"display_name": "ok", "limits": {}},
    ],
)
async def test_name_and_limits_are_the_operators(api: Api, body: dict[str, Any]) -> None:
    status, answer = await patch(api, body, await admin(api))
    assert status == 403
    assert answer["error"] == "Operator setting"
    org = await api.service.store.get_organization(org_id(ACME))
    assert org is not None
    assert (org.name, org.display_name, org.max_concurrent_calls) == (ACME, "", None)


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"display_name": ""}, "display_name"),
        ({"display_name": "x" * 201}, "display_name"),
        ({"display_name": "two\nlines"}, "display_name"),
        ({"display_name": 5}, "display_name"),
        ({"colour": "red"}, "colour"),
        ([], "body"),
        ({"assistant_defaults": "openai"}, "assistant_defaults"),
        ({"assistant_defaults": {"name": "Bob"}}, "name"),
        ({"assistant_defaults": {"tools": []}}, "tools"),
        ({"assistant_defaults": {"provider": "skynet"}}, "provider"),
        ({"assistant_defaults": {"first_message": "x" * 20_001}}, "first_message"),
        ({"assistant_defaults": {"max_duration_seconds": 5}}, "max_duration_seconds"),
        (
            {"assistant_defaults": {"llm_config": {"messages": [{"role": "robot"}]}}},
            "llm_config",
        ),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(api: Api, body: Any, names: str) -> None:
    status, answer = await patch(api, body, await admin(api))
    assert status == 400, answer
    assert set(answer) == {"error", "message"}
    assert names in answer["message"]
    org = await api.service.store.get_organization(org_id(ACME))
    assert org is not None
    assert org.assistant_defaults == {}
    assert org.display_name == ""


async def test_a_new_assistant_takes_the_defaults_it_leaves_out_and_its_calls_use_them(
    api: Api,
) -> None:
    status, _ = await patch(api, {"assistant_defaults": DEFAULTS}, await admin(api))
    assert status == 200
    h = api.auth()
    created = await api.client.post(
        "/assistants", json={"name": "Sales", "first_message": "Hi, Sales here."}, headers=h
    )
    assert created.status == 201, await created.text()
    assistant_id = (await created.json())["id"]
    read = await (await api.client.get(f"/assistants/{assistant_id}", headers=h)).json()
    assert read["first_message"] == "Hi, Sales here."  # its own wins
    assert read["provider"] == "xai_realtime"
    assert read["system_prompt"] == "You speak for Acme."
    assert read["record"] is True
    assert read["max_duration_seconds"] == 600

    placed = await api.client.post(
        "/calls/outbound",
        json={"destination": DESTINATION, "assistant_id": assistant_id},
        headers=h,
    )
    assert placed.status == 200, await placed.text()
    call = await api.service.store.get_call(None, (await placed.json())["call_id"])
    assert call is not None
    assert call.first_message == "Hi, Sales here."
    assert call.assistant_config.system_prompt == "You speak for Acme."
    assert call.assistant_config.max_duration_seconds == 600
    assert [r.destination for r in api.pbx.originated] == [DESTINATION]

    # Changing the defaults later leaves existing assistants as they are.
    await patch(api, {"assistant_defaults": {"system_prompt": "Changed."}}, await admin(api))
    again = await (await api.client.get(f"/assistants/{assistant_id}", headers=h)).json()
    assert again["system_prompt"] == "You speak for Acme."
    # Another organization's new assistants take none of acme's defaults.
    theirs = await api.client.post(
        "/assistants",
        json={"name": "Desk", "provider": "xai_realtime"},
        headers=api.auth(api.globex_key),
    )
    assert "system_prompt" not in await theirs.json()


async def test_the_operators_limit_holds_the_organizations_calls(database_url: str) -> None:
    settings = make_settings(database_url)
    settings.limits.organizations = [OrganizationLimitSettings(ACME, max_concurrent_calls=5)]
    async with serving(settings) as api:
        await set_limits(api.service.store, ACME, max_concurrent_calls=1)
        limits = (await (await api.client.get("/organization", headers=api.auth())).json())[
            "limits"
        ]
        assert (limits["max_concurrent_calls"], limits["max_concurrent_calls_source"]) == (
            1,
            "operator",
        )
        body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
        first = await api.client.post("/calls/outbound", json=body, headers=api.auth())
        assert first.status == 200, await first.text()
        refused = await api.client.post("/calls/outbound", json=body, headers=api.auth())
        assert refused.status == 429
        assert (await refused.json())["error"] == "Call limit reached"
        await set_limits(api.service.store, ACME, max_concurrent_calls=None)  # the file's 5 again
        second = await api.client.post("/calls/outbound", json=body, headers=api.auth())
        assert second.status == 200, await second.text()
