"""A stored provider key goes only where it went: an assistant's section whose provider or
``base_url`` changes takes its key again in clear. Sent back masked (as ``GET`` shows it) or
left out of an override that merges with the stored section, the key would follow to the new
host: that request is a ``422`` naming the key, and nothing changes. Proven where the keys
arrive: two OpenAI-compatible stand-ins on loopback, the old host and the new one, and a call
through REST whose caller speaks, so the assistant's LLM is asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api.spoken_calls import SPEECH, SpokenCalls, spoken_calls
from fakes.llm_standin import LlmStandIn
from fakes.world import DESTINATION, make_settings

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

OLD_KEY = "sk-acme-old-host-key-1111"
NEW_KEY = "sk-acme-new-host-key-2222"
MASKED = "****1111"


def llm(host: LlmStandIn, api_key: str) -> dict[str, Any]:
    return {
        "provider": "openai-compatible",
        "base_url": host.base_url,
        "api_key": api_key,
        "model": "acme-model",
    }


class Hosts:
    def __init__(self, app: SpokenCalls, old: LlmStandIn, new: LlmStandIn) -> None:
        self.app, self.old, self.new = app, old, new


@pytest.fixture
async def hosts(tmp_path: Path) -> AsyncIterator[Hosts]:
    settings = make_settings(f"sqlite:///{tmp_path / 'keys.db'}")
    settings.egress.allowed_networks = ["127.0.0.1/32"]  # the stand-ins listen on loopback
    async with (
        LlmStandIn(reply="Old host.") as old,
        LlmStandIn(reply="New host.") as new,
        spoken_calls(settings) as app,
    ):
        yield Hosts(app, old, new)


async def _assistant(hosts: Hosts) -> dict[str, Any]:
    body = {
        "name": "Own LLM",
        "first_message": "Hello.",
        "stt_config": {"provider": SPEECH},
        "tts_config": {"provider": SPEECH},
        "llm_config": llm(hosts.old, OLD_KEY),
    }
    status, created = await hosts.app.send("POST", "/assistants", body)
    assert status == 201, created
    assert created["llm_config"]["api_key"] == MASKED
    return dict(created)


async def test_a_masked_key_does_not_follow_a_changed_base_url(hosts: Hosts) -> None:
    app = hosts.app
    created = await _assistant(hosts)
    path = f"/assistants/{created['id']}"
    # Unchanged host: the masked key read back keeps the stored one.
    status, kept = await app.send("PATCH", path, {"llm_config": created["llm_config"]})
    assert status == 200, kept

    moved = {"llm_config": {**created["llm_config"], "base_url": hosts.new.base_url}}
    status, refused = await app.send("PATCH", path, moved)
    assert status == 422, refused
    assert refused["error"] == "Unprocessable entity"
    assert refused["message"].startswith("llm_config.api_key must be given again in clear")
    for other_provider in ("openai", "mistral"):  # nor to another provider at the same URL
        section = {**created["llm_config"], "provider": other_provider}
        status, refused = await app.send("PATCH", path, {"llm_config": section})
        assert status == 422, refused
    status, now = await app.send("GET", path)
    assert now["llm_config"] == created["llm_config"]  # nothing changed

    # A call's override that moves the stored key elsewhere is refused before anything is dialled.
    for override in (moved, {"llm_config": {"base_url": hosts.new.base_url}}):
        body = {"destination": DESTINATION, "assistant_id": created["id"]}
        status, refused = await app.send(
            "POST", "/calls/outbound", {**body, "assistant_override": override}
        )
        assert status == 422, refused
        assert "llm_config.api_key must be given again" in refused["message"]
    assert app.pbx.originated == []

    status, updated = await app.send("PATCH", path, {"llm_config": llm(hosts.new, NEW_KEY)})
    assert status == 200, updated
    assert updated["llm_config"]["api_key"] == "****2222"

    call_id = await app.answered({"assistant_id": created["id"]})
    await app.caller_says("When are you open?")
    request = await hosts.new.wait_request(timeout=10)
    await app.ended(call_id)
    assert request.authorization == f"Bearer {NEW_KEY}"
    seen = [r.authorization for r in (*hosts.new.requests, *hosts.old.requests)]
    assert f"Bearer {OLD_KEY}" not in seen
    assert hosts.old.requests == []


async def test_the_organization_defaults_keep_their_key_to_its_host(hosts: Hosts) -> None:
    app = hosts.app
    defaults = {"llm_config": llm(hosts.old, OLD_KEY)}
    status, body = await app.send("PATCH", "/organization", {"assistant_defaults": defaults})
    assert status == 200, body
    shown = body["assistant_defaults"]["llm_config"]
    assert shown["api_key"] == MASKED
    moved = {"llm_config": {**shown, "base_url": hosts.new.base_url}}
    status, refused = await app.send("PATCH", "/organization", {"assistant_defaults": moved})
    assert status == 422, refused
    assert refused["message"].startswith("llm_config.api_key must be given again in clear")
    status, now = await app.send("GET", "/organization")
    assert now["assistant_defaults"]["llm_config"]["base_url"] == hosts.old.base_url
    same = {"llm_config": {**shown, "model": "acme-model-2"}}
    status, body = await app.send("PATCH", "/organization", {"assistant_defaults": same})
    assert status == 200, body
