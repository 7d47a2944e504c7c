"""A tenant's JSON Schemas cannot stall the node (``domain/tenant_schemas.py``).

``analysis_plan.structured_data_schema`` is applied to what the organization's own LLM answers.
A catastrophic regular expression (``^(a+)+$``) on a long answer used to block the event loop,
and with it every call and the API of the node. Patterns are now refused at REST (a 400 naming
the keyword's place), schemas are bounded, and what is left is validated off the event loop
under a time limit. The proof runs one hostile call beside a normal one on the lab Asterisk:
the hostile assistant was stored before these limits (straight into the database), its LLM
(a local stand-in, ``fakes.llm_standin``) answers the analysis with the long string, and the
normal call and the API keep answering within a bound while the hostile call is analysed.

The LLM stand-in listens on loopback; the assistant names it as its own ``base_url``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from e2e.audio_helpers import SILENT_PARTY
from fakes.llm_standin import ChatRequest, LlmStandIn
from tenancy.conftest import ORGANIZATION, Tenants
from tenancy.test_speech_config import calls_processed
from voicedock.domain.records import Assistant
from voicedock.pipeline.analysis import ANALYSIS_PROMPT
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.asterisk, pytest.mark.usefixtures("local_model_allowed")]

CATASTROPHIC = {
    "type": "object",
    "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}},
}
# ~4 s of backtracking for re on this machine, doubling with each further "a".
HOSTILE_ANSWER = "a" * 27 + "!"


def is_analysis(request: ChatRequest) -> bool:
    return (request.system_prompt or "").startswith(ANALYSIS_PROMPT)


def analysis_or_reply(request: ChatRequest) -> str:
    """The tenant's LLM: the analysis answer carries the string its pattern chokes on."""
    if is_analysis(request):
        answer = {"summary": "A call.", "sentiment": 5, "structured_data": {"code": HOSTILE_ANSWER}}
        return json.dumps(answer, separators=(",", ":"))
    return "Okay."


@pytest.fixture
async def tenant_llm() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn(reply=analysis_or_reply) as llm:
        yield llm


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        (CATASTROPHIC, "analysis_plan.structured_data_schema.properties.code.pattern"),
        (
            {"type": "object", "patternProperties": {"^(a|a)*$": {"type": "string"}}},
            "analysis_plan.structured_data_schema.patternProperties",
        ),
        (
            {"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}},
            "analysis_plan.structured_data_schema.properties.x.$ref",
        ),
        (
            {"type": "object", "description": "x" * 20_000},
            "analysis_plan.structured_data_schema must be at most",
        ),
    ],
)
async def test_a_hostile_schema_is_refused_at_rest_naming_the_key(
    tenants: Tenants, lab: LabAsterisk, schema: dict[str, Any], named: str
) -> None:
    plan = {"analysis_plan": {"structured_data_schema": schema}}
    before = calls_processed(lab)
    status, body = await tenants.service.post("/assistants", {"name": "Extractor", **plan})
    assert status == 400, body
    assert named in body["message"]
    call = {"destination": SILENT_PARTY, "assistant": {"first_message": "Hi.", **plan}}
    status, body = await tenants.service.post("/calls/outbound", call)
    assert status == 400, body
    assert named in body["message"]
    assert calls_processed(lab) == before


async def test_nested_schemas_are_bounded_in_depth(tenants: Tenants) -> None:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(40):
        schema = {"type": "object", "properties": {"a": schema}}
    tool = {"type": "webhook", "name": "lookup", "parameters": schema}
    status, body = await tenants.service.post("/assistants", {"name": "Deep", "tools": [tool]})
    assert status == 400, body
    assert "tools[0].parameters" in body["message"]
    assert "nested deeper than" in body["message"]


@pytest.mark.e2e
async def test_a_hostile_analysis_beside_a_normal_call_does_not_stall_the_node(
    tenants: Tenants, tenant_llm: LlmStandIn
) -> None:
    service = tenants.service
    store = service.service.store
    org = await store.get_organization_by_name(ORGANIZATION)
    assert org is not None
    hostile = Assistant(
        id=str(uuid.uuid4()),
        organization_id=org.id,
        name="Stored before the limits",
        config={
            "first_message": "Hello.",
            "llm_config": {
                "provider": "openai-compatible",
                "base_url": tenant_llm.base_url,
                "api_key": "sk-tenant-own-key",
                "model": "tenant-model",
            },
            "analysis_plan": {"structured_data_schema": CATASTROPHIC},
        },
    )
    async with store.transaction() as tx:
        await tx.insert_assistant(hostile)

    status, placed = await service.post(
        "/calls/outbound", {"destination": SILENT_PARTY, "assistant_id": hostile.id}
    )
    assert status == 200, placed
    hostile_id = str(placed["call_id"])
    normal_first = "Good morning, this is the normal call."
    status, placed = await service.post(
        "/calls/outbound",
        {"destination": SILENT_PARTY, "assistant": {"first_message": normal_first}},
    )
    assert status == 200, placed
    normal_id = str(placed["call_id"])
    await service.wait_status(hostile_id, ("in-progress",), within=15)
    await service.wait_status(normal_id, ("in-progress",), within=15)

    # From the hostile call's end until its analysis is stored, the API and the normal call
    # are asked again and again; each answer must come within a bound.
    latencies: list[float] = []
    monitor = asyncio.create_task(_keep_asking(tenants, normal_id, latencies))
    try:
        status, _ = await service.post(f"/calls/{hostile_id}/control", {"type": "end-call"})
        assert status == 200
        analysis = await _analysis(tenants, hostile_id)
        await asyncio.sleep(1.0)
    finally:
        monitor.cancel()
        await asyncio.gather(monitor, return_exceptions=True)
    assert any(is_analysis(r) for r in tenant_llm.requests)  # the hostile analysis ran
    assert len(latencies) > 10
    slowest = max(latencies)
    assert slowest < 1.0, f"the API stalled {slowest:.1f} s during the hostile analysis"
    assert analysis["structured_data"] is None
    assert "pattern is not accepted" in analysis["structured_data_error"]

    assert (await service.call(normal_id))["status"] == "in-progress"
    status, _ = await service.post(f"/calls/{normal_id}/control", {"type": "end-call"})
    assert status == 200
    await service.wait_status(normal_id, ("ended",), within=10)
    await asyncio.wait_for(service.service.runner.wait_finished(normal_id), 10)
    normal = await service.call(normal_id)  # its transcript is stored once it has ended
    said = [m["content"] for m in normal["messages"] if m["role"] == "assistant"]
    assert said[:1] == [normal_first]


async def _keep_asking(tenants: Tenants, call_id: str, latencies: list[float]) -> None:
    """Ask for the call every 50 ms; record how long each round took beyond the pause (an
    answer, or a wake-up, that a stalled event loop delays)."""
    while True:
        started = time.monotonic()
        await tenants.service.call(call_id)
        await asyncio.sleep(0.05)
        latencies.append(time.monotonic() - started - 0.05)


async def _analysis(tenants: Tenants, call_id: str, within: float = 20.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while (call := await tenants.service.call(call_id))["analysis_result"] is None:
            await asyncio.sleep(0.2)
    return dict(call["analysis_result"])
