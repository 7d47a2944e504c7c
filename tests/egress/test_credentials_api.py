"""Credentials in a URL (``user:pass@``) are refused wherever an organization names a URL (a
provider, a tool server, a webhook), and one stored before that rule (or written into the
store by other means) reads masked in every answer: ``https://****@host/path``. Sending the
masked URL back is refused like any URL with credentials, and the stored one stays as it was.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api.conftest import Api, serving
from fakes.world import ACME, make_settings, org_id
from voicedock.domain.assistant_config import config_of
from voicedock.domain.records import Assistant, ToolTemplate
from voicedock.domain.webhooks import WebhookEndpoint, generate_secret

pytestmark = pytest.mark.unit

SECRETS = ("s3cret-pw", "t0ken", "hunter2")
PROVIDER = "https://acme:s3cret-pw@llm.example.com/v1"
TOOL = "https://bot:t0ken@crm.example.com/tools?source=voicedock"
HOOK = "https://admin:hunter2@hooks.example.com/voicedock"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serving(make_settings(f"sqlite:///{tmp_path / 'credentials.db'}")) as running:
        yield running


async def stored_before(api: Api) -> None:
    """An assistant, a tool template and a webhook endpoint saved with credentials in their
    URLs (before they were refused, or through the store directly)."""
    assistant = Assistant(
        id="legacy",
        organization_id=org_id(ACME),
        name="Legacy",
        config=config_of(
            {
                "first_message": "Hi.",
                "llm_config": {"provider": "openai-compatible", "base_url": PROVIDER, "model": "m"},
                "tools": [{"type": "webhook", "name": "crm", "server": {"url": TOOL}}],
            }
        ),
    )
    template = ToolTemplate(
        id="tt-legacy",
        organization_id=org_id(ACME),
        tool={"type": "webhook", "name": "crm", "server": {"url": TOOL}},
    )
    endpoint = WebhookEndpoint("we_legacy", org_id(ACME), HOOK, generate_secret())
    async with api.service.store.transaction() as tx:
        await tx.insert_assistant(assistant)
        await tx.insert_tool_template(template)
        await tx.insert_webhook_endpoint(endpoint)


async def get(api: Api, path: str) -> Any:
    resp = await api.client.get(path, headers=api.auth())
    assert resp.status == 200, await resp.text()
    text = await resp.text()
    for secret in SECRETS:
        assert secret not in text, (path, text)
    return await resp.json()


async def test_stored_credentials_read_masked_in_every_answer(api: Api) -> None:
    await stored_before(api)
    one = await get(api, "/assistants/legacy")
    assert one["llm_config"]["base_url"] == "https://****@llm.example.com/v1"
    assert one["tools"][0]["server"]["url"] == (
        "https://****@crm.example.com/tools?source=voicedock"
    )
    listed = await get(api, "/assistants")
    assert "https://****@llm.example.com/v1" in str(listed)
    template = await get(api, "/tool-templates/tt-legacy")
    assert template["server"]["url"] == "https://****@crm.example.com/tools?source=voicedock"
    await get(api, "/tool-templates")
    hook = await get(api, "/webhooks/we_legacy")
    assert hook["url"] == "https://****@hooks.example.com/voicedock"
    await get(api, "/webhooks")


async def test_a_masked_url_sent_back_is_refused_and_the_stored_one_kept(api: Api) -> None:
    await stored_before(api)
    read = await get(api, "/assistants/legacy")
    body = {"llm_config": read["llm_config"], "first_message": "Hello again."}
    resp = await api.client.patch("/assistants/legacy", json=body, headers=api.auth())
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["message"] == (
        "llm_config.base_url: credentials in the URL are not allowed"
    )
    stored = await api.service.store.get_assistant(org_id(ACME), "legacy")
    assert stored is not None
    assert stored.config.llm_config["base_url"] == PROVIDER  # nothing half-changed
    assert stored.config.first_message == "Hi."


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (
            "/assistants",
            {"name": "New", "llm_config": {"provider": "openai", "base_url": PROVIDER}},
            400,
            "llm_config.base_url: credentials in the URL are not allowed",
        ),
        (
            "/tool-templates",
            {"type": "webhook", "name": "crm", "server": {"url": TOOL}},
            400,
            "body.server.url: credentials in the URL are not allowed",
        ),
    ],
)
async def test_credentials_are_refused_when_given(
    api: Api, path: str, body: dict[str, Any], status: int, message: str
) -> None:
    resp = await api.client.post(path, json=body, headers=api.auth())
    assert resp.status == status, await resp.text()
    assert (await resp.json())["message"] == message
    resp = await api.client.post("/webhooks", json={"url": HOOK}, headers=api.auth())
    answer = await resp.json()
    assert answer["error"] == "Webhook URL refused"
    assert "credentials" in answer["message"]
    assert "hunter2" not in str(answer)
