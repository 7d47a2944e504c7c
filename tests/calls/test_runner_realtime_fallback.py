"""A speech-to-speech call whose assistant names a pipeline, through the runner: its session
drops after a reply and the call goes on with the pipeline built from the assistant's
``llm_config.fallback_plan`` (an OpenAI-compatible stand-in on loopback), which receives the
call so far; the move is the call's ``provider-switch`` event and the call ends normally. An
assistant that names no pipeline goes on with the operator's default LLM plan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from calls.test_runner_realtime import (  # noqa: F401 (the world fixture)
    ACME_ID,
    KEY,
    TEST_TTS,
    World,
    answered_realtime_call,
    until,
    world,
)
from fakes.calls import call_finished
from fakes.llm_standin import LlmStandIn
from voicedock.calls.control import EndCall, InjectContext
from voicedock.config import FallbackPlansSettings, Settings
from voicedock.domain.records import Call, CallStatus

pytestmark = pytest.mark.unit

GREETING = "Hello, dental clinic."
NOTE, LATER = "The caller is a new patient.", "Offer Monday."
ANSWER = "Monday at nine is free."


async def switches(world: World, call_id: str) -> list[dict[str, object]]:  # noqa: F811
    events = await world.store.list_events(call_id)
    return [dict(e.data) for e in events if e.type == "provider-switch"]


async def switched(world: World, call_id: str) -> None:  # noqa: F811
    async with asyncio.timeout(5):
        while not await switches(world, call_id):
            await asyncio.sleep(0.01)


@pytest.fixture
async def backup() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn(reply=ANSWER) as llm:
        yield llm


async def dropped_after_a_reply(
    world: World,  # noqa: F811
    session: dict[str, Any],
) -> tuple[str, Call]:
    """A call on ``session`` (its ``llm_config``) that answers once (asked by context), then
    drops; the pipeline answers the next context and the call is ended with "Goodbye."."""
    world.script.drop_after_replies = 1
    call_id = await answered_realtime_call(world, session)
    await until(lambda: ("assistant", GREETING) in world.observer.seen)
    await world.engine.control.run(ACME_ID, call_id, InjectContext(NOTE, trigger_response=True))
    await until(lambda: ("assistant", "Hi") in world.observer.seen)  # the session's reply
    await switched(world, call_id)
    await world.engine.control.run(ACME_ID, call_id, InjectContext(LATER, trigger_response=True))
    await until(lambda: ("assistant", ANSWER) in world.observer.seen)  # the pipeline's
    await world.engine.control.run(ACME_ID, call_id, EndCall("Goodbye."))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    call = await world.store.get_call(None, call_id)
    assert call is not None
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "api-end-call")
    return call_id, call


async def test_a_dropped_session_goes_on_with_the_assistants_pipeline(
    world: World,  # noqa: F811
    backup: LlmStandIn,
) -> None:
    plan = [{"provider": "openai-compatible", "base_url": backup.base_url, "model": "backup"}]
    session = {"url": world.realtime_url, "api_key": KEY, "fallback_plan": plan}
    call_id, call = await dropped_after_a_reply(world, session)
    messages = [(m.role, m.content) for m in await world.store.list_messages(call_id)]
    assert messages == [
        ("assistant", GREETING),
        ("assistant", "Hi"),
        ("assistant", ANSWER),
        ("assistant", "Goodbye."),
    ]
    port = world.realtime_url.split(":")[2].split("/")[0]
    (switch,) = await switches(world, call_id)
    assert switch["engine"] == "realtime"
    assert switch["from"] == f"xai_realtime/127.0.0.1:{port}"
    assert str(switch["to"]).endswith("/backup")
    # The pipeline's model: the session's instructions, then the call so far.
    (request,) = backup.requests
    assert "dental appointments" in (request.system_prompt or "")
    assert [(m["role"], m["content"]) for m in request.messages[1:]] == [
        ("assistant", GREETING),
        ("system", NOTE),
        ("assistant", "Hi"),
        ("system", LATER),
    ]
    assert world.tts.texts == [GREETING, ANSWER, "Goodbye."]  # one voice throughout
    assert call.speech_usage == usage_after_the_switch()


async def test_a_dropped_session_without_a_plan_goes_on_with_the_operators_default_plan(
    world: World,  # noqa: F811
    backup: LlmStandIn,
    settings: Settings,
) -> None:
    settings.speech.fallback_plans = msgspec.convert(
        {
            "llm": [
                {
                    "provider": "openai-compatible",
                    "base_url": backup.base_url,
                    "api_key": "sk-operator-backup",
                    "model": "backup",
                }
            ]
        },
        FallbackPlansSettings,
    )
    session = {"url": world.realtime_url, "api_key": KEY}  # no fallback_plan of its own
    call_id, call = await dropped_after_a_reply(world, session)
    messages = [(m.role, m.content) for m in await world.store.list_messages(call_id)]
    assert messages[1:3] == [("assistant", "Hi"), ("assistant", ANSWER)]
    (switch,) = await switches(world, call_id)
    assert (switch["engine"], switch["reason"]) == ("realtime", "connection")
    assert switch["to"] == f"openai-compatible/{backup.base_url.split('/')[2]}/backup"
    # The operator's model, with the operator's key, given the call so far.
    (request,) = backup.requests
    assert request.authorization == "Bearer sk-operator-backup"
    assert [(m["role"], m["content"]) for m in request.messages[1:]] == [
        ("assistant", GREETING),
        ("system", NOTE),
        ("assistant", "Hi"),
        ("system", LATER),
    ]
    assert world.tts.texts == [GREETING, ANSWER, "Goodbye."]  # the say voice throughout
    assert call.speech_usage == usage_after_the_switch()


def usage_after_the_switch() -> list[dict[str, object]]:
    """What the session said counts against it; what the pipeline said after the switch
    (the same voice, by its own name: voicedock's TTS) against the pipeline's voice."""
    return [
        {"kind": "stt", "provider": "xai_realtime", "seconds": 0.0},
        {"kind": "tts", "provider": "xai_realtime", "characters": len(GREETING + "Hi")},
        {"kind": "tts", "provider": TEST_TTS, "characters": len(ANSWER + "Goodbye.")},
    ]
