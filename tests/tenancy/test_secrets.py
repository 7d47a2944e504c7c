"""Provider keys an organization stores with its assistants are write-only
(``domain/secret_fields.py``): every read shows ``****`` and the last four characters, to
every key of the organization (a read-only one included); a client that sends the masked value
back keeps the stored key, which still reaches the provider (checked where it arrives: the
organization's own LLM, a local stand-in on loopback, named as the assistant's ``base_url``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from e2e.audio_helpers import SILENT_PARTY, wait_transcript
from fakes.llm_standin import LlmStandIn
from tenancy.conftest import ORGANIZATION, Tenants
from voicedock.api.api_keys import issue_api_key
from voicedock.domain.records import KeyScope

pytestmark = [pytest.mark.asterisk, pytest.mark.usefixtures("local_model_allowed")]

OWN_KEY = "sk-acme-own-provider-key-7f3a"
SHOWN = "****7f3a"
DEEPGRAM_KEY = "dg-acme-secret-key-0042"


@pytest.fixture
async def tenant_llm() -> AsyncIterator[LlmStandIn]:
    answer = json.dumps({"summary": "A call.", "sentiment": 5})
    async with LlmStandIn(reply=answer) as llm:
        yield llm


def assistant_body(llm: LlmStandIn) -> dict[str, Any]:
    return {
        "name": "Own keys",
        "first_message": "Hello.",
        "stt_config": {"provider": "deepgram", "api_key": DEEPGRAM_KEY},
        "llm_config": {
            "provider": "openai-compatible",
            "base_url": llm.base_url,
            "api_key": OWN_KEY,
            "model": "acme-model",
        },
    }


def secrets_in(body: object) -> list[str]:
    text = json.dumps(body)
    return [s for s in (OWN_KEY, DEEPGRAM_KEY) if s in text]


async def test_stored_provider_keys_are_masked_on_every_read(
    tenants: Tenants, tenant_llm: LlmStandIn
) -> None:
    service = tenants.service
    status, created = await service.post("/assistants", assistant_body(tenant_llm))
    assert status == 201, created
    assert secrets_in(created) == []
    assert created["llm_config"]["api_key"] == SHOWN
    assert created["stt_config"]["api_key"] == "****0042"

    read_only, _ = await issue_api_key(
        service.service.store, ORGANIZATION, scope=KeyScope.READ_ONLY
    )
    for headers in (service.auth(), {"Authorization": f"Bearer {read_only}"}):
        for path in ("/assistants", f"/assistants/{created['id']}"):
            resp = await service.client.get(path, headers=headers)
            assert resp.status == 200
            assert secrets_in(await resp.json()) == [], path


async def test_sending_the_masked_key_back_keeps_the_stored_one(
    tenants: Tenants, tenant_llm: LlmStandIn
) -> None:
    """Read, change the greeting, send everything back (the PATCH a console makes): the call
    still reaches the organization's LLM with its real key (the call's analysis asks it)."""
    service = tenants.service
    body = assistant_body(tenant_llm)
    body.pop("stt_config")  # the operator's Whisper hears the lab's party
    status, created = await service.post("/assistants", body)
    assert status == 201, created
    read_back = {k: created[k] for k in ("first_message", "llm_config")}
    read_back["first_message"] = "Hello again."
    resp = await service.client.patch(
        f"/assistants/{created['id']}", json=read_back, headers=service.auth()
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["llm_config"]["api_key"] == SHOWN

    override = {"llm_config": {"api_key": SHOWN, "temperature": 0.2}}
    call = {"destination": SILENT_PARTY, "assistant_id": created["id"]}
    call["assistant_override"] = override
    status, placed = await service.post("/calls/outbound", call)
    assert status == 200, placed
    call_id = str(placed["call_id"])
    await service.wait_status(call_id, ("in-progress",), within=15)
    # The changed greeting is said: the call's conversation runs (ended before it started, a
    # call has nothing for a model to analyse).
    await wait_transcript(service, call_id, lambda t: t["content"] == "Hello again.")
    await service.post(f"/calls/{call_id}/control", {"type": "end-call"})
    request = await tenant_llm.wait_request(timeout=20)
    assert request.authorization == f"Bearer {OWN_KEY}"
    assert request.model == "acme-model"


@pytest.mark.parametrize("where", ["PATCH /assistants", "POST /assistants", "transient"])
async def test_a_masked_value_that_matches_no_stored_key_is_refused(
    tenants: Tenants, tenant_llm: LlmStandIn, where: str
) -> None:
    service = tenants.service
    status, created = await service.post("/assistants", assistant_body(tenant_llm))
    assert status == 201, created
    guessed = {"llm_config": {"provider": "openai", "api_key": "****dead"}}
    if where == "PATCH /assistants":
        resp = await service.client.patch(
            f"/assistants/{created['id']}", json=guessed, headers=service.auth()
        )
        status, body = resp.status, await resp.json()
    elif where == "POST /assistants":
        status, body = await service.post("/assistants", {"name": "Guess", **guessed})
    else:
        call = {"destination": SILENT_PARTY, "assistant": guessed}
        status, body = await service.post("/calls/outbound", call)
    assert status == 400, body
    assert "llm_config.api_key is a masked value" in body["message"]
