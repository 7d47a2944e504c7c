"""An LLM plan of two OpenAI-compatible servers (local stand-ins speaking the API's wire): a
server answering 500 and one hanging midway are left for the next, whose words complete the
reply; a server slow to start is raced by the next, and the first to answer serves."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from fakes.llm_standin import LlmStandIn, chat_chunk
from fakes.local_server import LocalServer, Scripted
from voicedock.pipeline.fallback_plans.llm import CONTINUE_NOTE, LlmPlan
from voicedock.pipeline.fallback_plans.plan import Entry, Switch
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.pools.provider_health import BreakerState, Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import Llm
from voicedock.pipeline.providers.openai_compat import OpenAiCompatLlm
from voicedock.pipeline.tools import ToolSpec

pytestmark = pytest.mark.unit

CONTEXT = [ChatMessage("user", "When are you open?")]


def tool_chunk(fragment: dict[str, Any]) -> bytes:
    """One SSE event carrying one ``delta.tool_calls`` fragment."""
    choice = {"index": 0, "delta": {"tool_calls": [fragment]}, "finish_reason": None}
    doc = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]}
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def llm(model: str, base_url: str) -> Llm:
    return OpenAiCompatLlm(model=model, base_url=base_url)


def endpoint(model: str, server: LlmStandIn) -> Endpoint:
    return Endpoint("llm", "openai", server.base_url, model)


def failures(health: ProviderHealth, endpoint: Endpoint) -> tuple[int, BreakerState]:
    return health.counts()[endpoint].failures, health.state(endpoint)


async def reply(
    primary: LlmStandIn,
    second: LlmStandIn,
    health: ProviderHealth | None = None,
    *,
    first_token_timeout_s: float = 2,
    linger_s: float = 0,
) -> tuple[list[str], list[Switch], float]:
    """The plan's reply, and how long it took; the plan is closed ``linger_s`` after it (a
    request it still reads meanwhile is read to its end)."""
    switches: list[Switch] = []
    entries: list[Entry[Llm]] = [
        Entry(endpoint(model, server), llm(model, server.base_url))
        for model, server in (("a", primary), ("b", second))
    ]
    plan = LlmPlan(entries, health or ProviderHealth(), switches.append)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        said = [
            item
            async for item in plan.sentences(
                CONTEXT, (), first_token_timeout_s=first_token_timeout_s, takeover_s=0.5
            )
        ]
        took = loop.time() - started
        await asyncio.sleep(linger_s)
    finally:
        await plan.aclose()
    return [s for s in said if isinstance(s, str)], switches, took


async def test_a_server_answering_500_leaves_the_reply_to_the_next() -> None:
    async with LlmStandIn() as primary, LlmStandIn(reply="We open at nine.") as second:
        primary.fail_all(500)
        said, switches, _ = await reply(primary, second)
    assert said == ["We open at nine."]
    assert [(s.reason, s.to is not None) for s in switches] == [("server-error", True)]


async def test_a_server_hanging_midway_is_completed_by_the_next_without_repeating() -> None:
    async with (
        LlmStandIn(
            reply="We open at nine. On Sundays we are closed.", hang_after_words=6
        ) as primary,
        LlmStandIn(reply="On Sundays we are closed.") as second,
    ):
        said, switches, _ = await reply(primary, second)
        (asked,) = second.requests
    assert said == ["We open at nine.", "On Sundays we are closed."]
    assert [m["content"] for m in asked.body["messages"]][-2:] == [
        "We open at nine.",
        CONTINUE_NOTE,
    ]
    assert [s.reason for s in switches] == ["timeout"]


async def test_a_tool_call_streaming_longer_than_the_stall_limit_is_not_a_stall() -> None:
    """After its text, a call's arguments arrive in parts, each well within the limit, all of
    them over it: the model is working, not silent, and its call is carried out, not the next
    entry's."""
    arguments = [f'{{"number": "A-{n}"' if n == 0 else f', "n{n}": {n}' for n in range(6)]
    named = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "book"}}
    events = [chat_chunk("", role=True), chat_chunk("One moment. "), tool_chunk(named)]
    events += [tool_chunk({"index": 0, "function": {"arguments": part}}) for part in arguments]
    events += [tool_chunk({"index": 0, "function": {"arguments": "}"}}), b"data: [DONE]\n\n"]
    slow = LocalServer()
    slow.route("POST", "/v1/chat/completions")
    slow.replies.append(Scripted(chunks=events, content_type="text/event-stream", gap_s=0.15))
    async with slow, LlmStandIn(reply="Something else.") as second:
        switches: list[Switch] = []
        entries: list[Entry[Llm]] = [
            Entry(Endpoint("llm", "openai", slow.url, "a"), llm("a", slow.url + "/v1")),
            Entry(Endpoint("llm", "openai", second.base_url, "b"), llm("b", second.base_url)),
        ]
        plan = LlmPlan(entries, ProviderHealth(), switches.append)
        try:
            said = [
                item
                async for item in plan.sentences(
                    CONTEXT, (ToolSpec("book"),), first_token_timeout_s=2, takeover_s=0.5
                )
            ]
        finally:
            await plan.aclose()
    assert [
        (c.name, json.loads(c.arguments)["number"]) for c in said if isinstance(c, ToolCall)
    ] == [("book", "A-0")]
    assert switches == []
    assert second.requests == []


async def test_a_server_slow_to_start_is_outrun_by_the_next_and_not_counted_failing() -> None:
    health = ProviderHealth(failures_to_open=1)
    async with (
        LlmStandIn(reply="Our primary speaks.", delay_s=1.0) as primary,
        LlmStandIn(reply="We open at nine.", delay_s=0.1) as second,
    ):
        said, switches, took = await reply(primary, second, health, linger_s=0.8)
        (asked_first,), (asked_next,) = primary.requests, second.requests
    assert said == ["We open at nine."]
    assert took == pytest.approx(0.5 + 0.1, abs=0.2)  # the takeover time, then the next's
    # The next server was asked the same conversation after the takeover time.
    assert asked_next.messages == asked_first.messages
    assert asked_next.at - asked_first.at == pytest.approx(0.5, abs=0.15)
    assert [(s.source, s.to, s.reason) for s in switches] == [
        (endpoint("a", primary), endpoint("b", second), "slow")
    ]
    # It answered after losing (read on meanwhile): slow, not failing.
    assert failures(health, endpoint("a", primary)) == (0, BreakerState.CLOSED)


async def test_a_slow_server_answering_before_the_next_keeps_the_reply() -> None:
    health = ProviderHealth(failures_to_open=1)
    async with (
        LlmStandIn(reply="Our primary speaks.", delay_s=0.8) as primary,
        LlmStandIn(reply="We open at nine.", delay_s=2.0) as second,
    ):
        said, switches, took = await reply(primary, second, health)
        (asked_first,), (asked_next,) = primary.requests, second.requests
    assert said == ["Our primary speaks."]
    assert took == pytest.approx(0.8, abs=0.2)
    assert switches == []
    assert asked_next.at - asked_first.at == pytest.approx(0.5, abs=0.15)  # raced, and lost
    assert failures(health, endpoint("b", second)) == (0, BreakerState.CLOSED)


async def test_a_hung_server_is_outrun_at_once_and_fails_at_its_deadline() -> None:
    health = ProviderHealth(failures_to_open=1)
    async with (
        LlmStandIn(reply="Our primary speaks.", hang_after_words=0) as primary,
        LlmStandIn(reply="We open at nine.") as second,
    ):
        said, switches, took = await reply(
            primary, second, health, first_token_timeout_s=1.0, linger_s=0.8
        )
    assert said == ["We open at nine."]
    assert took == pytest.approx(0.5, abs=0.2)  # the takeover time, then the next's words
    assert [s.reason for s in switches] == ["slow"]
    assert failures(health, endpoint("a", primary)) == (1, BreakerState.OPEN)
