"""An organization's own provider key on a real call: REST → a provider key and an assistant
referencing it by name → lab Asterisk → a speaking party → the OpenAI-compatible LLM stand-in
(the operator's ``[speech] openai_base_url``), which must receive the organization's key, not
the operator's — and after a rotation, the new key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from e2e.conftest import LiveService, serve, service_settings
from e2e.test_llm_e2e import OPERATOR_KEY, converse, llm  # noqa: F401 (the fixture)
from fakes.llm_standin import LlmStandIn
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

ORG_KEY = "sk-acme-own-0123456789-first"
ROTATED = "sk-acme-own-0123456789-second"


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn) -> AsyncIterator[LiveService]:  # noqa: F811
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.speech.openai_base_url = llm.base_url
    settings.speech.openai_api_key = OPERATOR_KEY
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def test_the_llm_receives_the_organizations_key_and_after_rotation_the_new_one(
    live: LiveService,
    llm: LlmStandIn,  # noqa: F811
    tmp_path: Path,
) -> None:
    h = live.auth()
    body = {"name": "acme-openai", "provider": "openai", "api_key": ORG_KEY}
    resp = await live.client.post("/provider-keys", json=body, headers=h)
    assert resp.status == 201, await resp.text()
    key_id = (await resp.json())["id"]
    assistant = {
        "name": "Own key",
        "first_message": "Riverside dental clinic.",
        "stt_config": {"provider": "offline"},
        "tts_config": {"provider": "offline"},
        "llm_config": {"provider": "openai", "api_key_ref": "acme-openai"},
    }
    resp = await live.client.post("/assistants", json=assistant, headers=h)
    assert resp.status == 201, await resp.text()
    assistant_id = (await resp.json())["id"]

    first = await converse(live, llm, {"assistant_id": assistant_id})
    assert first.authorization == f"Bearer {ORG_KEY}"

    resp = await live.client.patch(f"/provider-keys/{key_id}", json={"api_key": ROTATED}, headers=h)
    assert resp.status == 200, await resp.text()
    llm.requests.clear()
    second = await converse(live, llm, {"assistant_id": assistant_id})
    assert second.authorization == f"Bearer {ROTATED}"
    # The keys are nowhere in what the API answers, nor in clear in the database.
    calls = await live.client.get("/calls", headers=h)
    listed = await calls.text()
    assert ORG_KEY not in listed
    assert ROTATED not in listed
    for path in tmp_path.glob("e2e.db*"):
        data = path.read_bytes()
        assert ORG_KEY.encode() not in data, path
        assert ROTATED.encode() not in data, path
