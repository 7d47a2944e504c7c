"""A call's ``llm_config`` reaches its LLM as it was sent: resolved once when the call is
placed, handed down to the call's providers, checked again when the call is answered only
against what may have changed since (the operator's egress policy). Proven where a user
stands: calls placed through REST (``POST /calls/outbound``: a call, a scheduled call, a
squad's), answered over real media, the caller speaking, and what an OpenAI-compatible
stand-in on loopback received (model, temperature, key, the base URL it was sent to)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api.spoken_calls import SPEECH, SpokenCalls, spoken_calls
from api.test_per_call_api import moment
from fakes.llm_standin import COMPLETIONS_PATH, ChatRequest, LlmStandIn
from fakes.world import DESTINATION, make_settings
from voicedock.config import Settings

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

KEY = "sk-acme-walk-key-3333"


def llm_config(llm: LlmStandIn, **fields: Any) -> dict[str, Any]:
    return {
        "provider": "openai-compatible",
        "base_url": llm.base_url,
        "api_key": KEY,
        "model": "acme-model",
        "temperature": 0.3,
        **fields,
    }


def assistant(llm: dict[str, Any]) -> dict[str, Any]:
    return {
        "first_message": "Hello.",
        "stt_config": {"provider": SPEECH},
        "tts_config": {"provider": SPEECH},
        "llm_config": llm,
    }


def settings_of(tmp_path: Path, *, loopback_allowed: bool = True) -> Settings:
    settings = make_settings(f"sqlite:///{tmp_path / 'walk.db'}")
    if loopback_allowed:  # the stand-ins listen on loopback
        settings.egress.allowed_networks = ["127.0.0.1/32"]
    return settings


def received(request: ChatRequest, llm: LlmStandIn, model: str, temperature: float) -> None:
    """What the LLM stand-in must have received: ``model``, ``temperature``, the key."""
    assert request.path == COMPLETIONS_PATH  # under the section's base URL (``llm.base_url``)
    assert request.model == model
    assert request.body["temperature"] == temperature
    assert request.authorization == f"Bearer {KEY}"
    assert request.last_user_text == "When are you open?"
    assert llm.requests[0] is request


async def asked(app: SpokenCalls, call_id: str, llm: LlmStandIn) -> ChatRequest:
    """What ``llm`` received when the caller of the answered call ``call_id`` asked, the call
    then ended."""
    await app.caller_says("When are you open?")
    request = await llm.wait_request()
    await app.ended(call_id)
    return request


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn(reply="We open at nine.") as standin:
        yield standin


async def test_an_outbound_calls_llm_config_reaches_its_llm(
    tmp_path: Path, llm: LlmStandIn
) -> None:
    async with spoken_calls(settings_of(tmp_path)) as app:
        call_id = await app.answered({"assistant": assistant(llm_config(llm))})
        request = await asked(app, call_id, llm)
    received(request, llm, "acme-model", 0.3)


async def test_a_saved_assistants_key_reference_and_a_calls_override_reach_its_llm(
    tmp_path: Path, llm: LlmStandIn
) -> None:
    """Reference mode with an override: the saved section, its referenced key opened, the
    override's temperature merged onto it."""
    async with spoken_calls(settings_of(tmp_path)) as app:
        key = {"name": "acme-llm", "provider": "openai", "api_key": KEY}
        status, body = await app.send("POST", "/provider-keys", key)
        assert status == 201, body
        section = llm_config(llm, api_key_ref="acme-llm", model="saved-model")
        del section["api_key"]
        status, saved = await app.send(
            "POST", "/assistants", {"name": "Own LLM"} | assistant(section)
        )
        assert status == 201, saved
        override = {"llm_config": {"temperature": 0.9}}
        call_id = await app.answered({"assistant_id": saved["id"], "assistant_override": override})
        request = await asked(app, call_id, llm)
        stored = await app.service.store.get_call(None, call_id)
    received(request, llm, "saved-model", 0.9)
    assert stored is not None  # the call's snapshot keeps the reference, never the key
    assert stored.assistant_config.llm_config["api_key_ref"] == "acme-llm"  # type: ignore[index]
    assert "api_key" not in stored.assistant_config.llm_config  # type: ignore[operator]
    assert KEY not in str(stored.assistant_config)


async def scheduled_while_down(app: SpokenCalls, llm: LlmStandIn) -> str:
    """A call scheduled a moment ahead on a node whose PBX is down (nothing is dialed)."""
    app.pbx.connected = False
    body = {
        "destination": DESTINATION,
        "assistant": assistant(llm_config(llm)),
        "scheduled_at": moment(1),
    }
    status, placed = await app.send("POST", "/calls/outbound", body)
    assert status == 201, placed
    return str(placed["call_id"])


async def dialed_and_answered(app: SpokenCalls, call_id: str, *, media: bool = True) -> None:
    """The scheduled call dialed when it comes due and answered (``media``: its media open)."""
    async with asyncio.timeout(15):
        while call_id not in [o.call_id for o in app.pbx.originated]:
            await asyncio.sleep(0.05)
    await app.pbx.answer(call_id)
    if not media:
        return
    async with asyncio.timeout(5):
        while not app.fake.channels:
            await asyncio.sleep(0.005)


async def test_a_scheduled_call_reaches_its_llm_under_the_policy_it_was_placed_with(
    tmp_path: Path, llm: LlmStandIn
) -> None:
    async with spoken_calls(settings_of(tmp_path)) as app:
        call_id = await scheduled_while_down(app, llm)
    async with spoken_calls(settings_of(tmp_path)) as app:
        await dialed_and_answered(app, call_id)
        request = await asked(app, call_id, llm)
    received(request, llm, "acme-model", 0.3)


async def test_a_scheduled_call_whose_llm_the_policy_refuses_since_never_reaches_it(
    tmp_path: Path, llm: LlmStandIn
) -> None:
    """The operator stops allowing the stand-in's network after the call was scheduled: the
    call is dialed when it comes due, and its providers are refused when it is answered."""
    async with spoken_calls(settings_of(tmp_path)) as app:
        call_id = await scheduled_while_down(app, llm)
    async with spoken_calls(settings_of(tmp_path, loopback_allowed=False)) as app:
        await dialed_and_answered(app, call_id, media=False)  # refused before its media
        async with asyncio.timeout(10):
            while (call := (await app.send("GET", f"/calls/{call_id}"))[1])["status"] != "ended":
                await asyncio.sleep(0.05)
    assert call["end_reason"] == "provider-error", call
    await asyncio.sleep(0.2)
    assert llm.requests == []


async def test_a_squad_handoff_hands_the_next_members_llm_config_to_its_llm(
    tmp_path: Path,
) -> None:
    async with (
        LlmStandIn(reply="Front desk.") as front,
        LlmStandIn(reply="Billing.") as billing,
        spoken_calls(settings_of(tmp_path)) as app,
    ):
        squad = {
            "members": [
                {
                    "name": "front",
                    "assistant": assistant(llm_config(front, model="front-model")),
                    "destinations": [{"member": "billing", "description": "Invoices."}],
                },
                {
                    "name": "billing",
                    "assistant": assistant(llm_config(billing, temperature=0.7)),
                },
            ]
        }
        call_id = await app.answered({"squad": squad})
        await app.caller_says("When are you open?")
        first = await front.wait_request()
        handoff = {"type": "handoff", "member": "billing"}
        status, body = await app.send("POST", f"/calls/{call_id}/control", handoff)
        assert status == 200, body
        await app.caller_says("When are you open?")
        second = await billing.wait_request()
        await app.ended(call_id)
    received(first, front, "front-model", 0.3)
    received(second, billing, "acme-model", 0.7)
