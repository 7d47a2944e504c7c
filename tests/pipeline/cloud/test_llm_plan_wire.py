"""An LLM plan of two OpenAI-compatible servers (local stand-ins speaking the API's wire): a
server answering 500 and one hanging midway are left for the next, whose words complete the
reply."""

from __future__ import annotations

import pytest

from fakes.llm_standin import LlmStandIn
from voicedock.pipeline.fallback_plans.llm import CONTINUE_NOTE, LlmPlan
from voicedock.pipeline.fallback_plans.plan import Entry, Switch
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.provider_health import Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import Llm
from voicedock.pipeline.providers.openai_compat import OpenAiCompatLlm

pytestmark = pytest.mark.unit

CONTEXT = [ChatMessage("user", "When are you open?")]


def llm(model: str, base_url: str) -> Llm:
    return OpenAiCompatLlm(model=model, base_url=base_url)


async def reply(primary: LlmStandIn, second: LlmStandIn) -> tuple[list[str], list[Switch]]:
    switches: list[Switch] = []
    entries: list[Entry[Llm]] = [
        Entry(Endpoint("llm", "openai", server.base_url, model), llm(model, server.base_url))
        for model, server in (("a", primary), ("b", second))
    ]
    plan = LlmPlan(entries, ProviderHealth(), switches.append)
    try:
        said = [
            item
            async for item in plan.sentences(
                CONTEXT, (), first_token_timeout_s=2, stall_timeout_s=0.5
            )
        ]
    finally:
        await plan.aclose()
    return [s for s in said if isinstance(s, str)], switches


async def test_a_server_answering_500_leaves_the_reply_to_the_next() -> None:
    async with LlmStandIn() as primary, LlmStandIn(reply="We open at nine.") as second:
        primary.fail_all(500)
        said, switches = await reply(primary, second)
    assert said == ["We open at nine."]
    assert [(s.reason, s.to is not None) for s in switches] == [("bad-response", True)]


async def test_a_server_hanging_midway_is_completed_by_the_next_without_repeating() -> None:
    async with (
        LlmStandIn(
            reply="We open at nine. On Sundays we are closed.", hang_after_words=6
        ) as primary,
        LlmStandIn(reply="On Sundays we are closed.") as second,
    ):
        said, switches = await reply(primary, second)
        (asked,) = second.requests
    assert said == ["We open at nine.", "On Sundays we are closed."]
    assert [m["content"] for m in asked.body["messages"]][-2:] == [
        "We open at nine.",
        CONTINUE_NOTE,
    ]
    assert [s.reason for s in switches] == ["timeout"]
