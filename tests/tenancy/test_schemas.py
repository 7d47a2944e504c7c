"""A tenant's JSON Schemas cannot stall the node (``domain/tenant_schemas.py``) and a slow one
costs only its own organization (``pipeline/analysis/schema_checks.py``).

``analysis_plan.structured_data_schema`` is applied to what the organization's own LLM answers.
A catastrophic regular expression (``^(a+)+$``) on a long answer used to block the event loop,
and a schema that refers to itself (174 bytes) doubled its work at each level of a nested answer
in a thread nobody could stop: two such answers made every organization's analysis time out
and delayed every call's media. Patterns, cycles and schemas that grow past a bound are now
refused at REST (a 400 naming the place), a configuration stored before the limits is refused
when applied, and what is left is checked in the node's schema workers: processes of their own,
killed at a deadline, fair between organizations. The proofs run hostile calls beside normal
ones on the lab Asterisk: the hostile assistant's LLM (a local stand-in,
``fakes.llm_standin``) answers the analysis with what its schema chokes on.

The LLM stand-in listens on loopback; the assistants name it as their own ``base_url``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import SILENT_PARTY
from fakes.calls import call_finished
from fakes.hostile_schemas import RECURSIVE, SLOW_ANSWER, SLOW_SCHEMA, nested
from fakes.llm_standin import ChatRequest, LlmStandIn
from tenancy.conftest import ORGANIZATION, Tenants, give_globex_a_number
from tenancy.test_speech_config import calls_processed
from voicedock.config import Settings
from voicedock.domain.assistant_config import config_of
from voicedock.domain.records import Assistant
from voicedock.pipeline.analysis.post_call import ANALYSIS_PROMPT
from voicedock.pipeline.analysis.schema_checks import DEADLINE_S, TOO_LONG
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.asterisk, pytest.mark.usefixtures("local_model_allowed")]

CATASTROPHIC = {
    "type": "object",
    "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}},
}
# ~4 s of backtracking for re on this machine, doubling with each further "a".
HOSTILE_ANSWER = "a" * 27 + "!"
NESTED = nested(30)  # depth 16 took 3 s before the limits; 30: hours
# A plan of the other organization's, and what its model extracts.
DAY_SCHEMA = {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}
EXTRACTED = {"day": "Monday"}


def is_analysis(request: ChatRequest) -> bool:
    return (request.system_prompt or "").startswith(ANALYSIS_PROMPT)


def extracted_for(prompt: str) -> object:
    """What the tenant's model extracts, by the schema its analysis prompt carries."""
    if '"enum"' in prompt:
        return SLOW_ANSWER
    if '"$defs"' in prompt:
        return {"x": NESTED}
    if '"pattern"' in prompt:
        return {"code": HOSTILE_ANSWER}
    return EXTRACTED


def analysis_or_reply(request: ChatRequest) -> str:
    """The tenants' LLM: the analysis answer carries what the plan's schema chokes on."""
    if is_analysis(request):
        extracted = extracted_for(request.system_prompt or "")
        answer = {"summary": "A call.", "sentiment": 5, "structured_data": extracted}
        return json.dumps(answer, separators=(",", ":"))
    return "Okay."


@pytest.fixture
def tenant_settings(tenant_settings: Settings) -> Settings:
    """The example, with a number of globex's own to call from."""
    give_globex_a_number(tenant_settings)
    return tenant_settings


def own_model(llm: LlmStandIn) -> dict[str, str]:
    """An assistant's ``llm_config``: the organization's own model (the stand-in)."""
    return {
        "provider": "openai-compatible",
        "base_url": llm.base_url,
        "api_key": "sk-tenant-own-key",
        "model": "tenant-model",
    }


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
        (
            RECURSIVE,
            "analysis_plan.structured_data_schema.$defs.n.anyOf[0].items.$ref leads back to a "
            "schema that contains it",
        ),
        (
            {"type": "object", "unevaluatedProperties": False},
            "analysis_plan.structured_data_schema.unevaluatedProperties is not accepted",
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


async def test_a_recursive_or_doubling_schema_is_refused_in_an_analysis_template(
    tenants: Tenants,
) -> None:
    doubling: dict[str, Any] = {"d10": {"type": "string"}}
    for i in range(10):  # each definition names the next twice: 2^10 schemas, no cycle
        ref = {"$ref": f"#/$defs/d{i + 1}"}
        doubling[f"d{i}"] = {"properties": {"a": ref, "b": ref}}
    for schema, named in (
        (RECURSIVE, "body.structured_data_schema.$defs.n.anyOf[0].items.$ref leads back"),
        (
            {"$defs": doubling, "$ref": "#/$defs/d0"},
            "body.structured_data_schema must hold at most 256 subschemas",
        ),
    ):
        template = {"name": "Nested", "structured_data_schema": schema}
        status, body = await tenants.service.post("/analysis-templates", template)
        assert status == 400, body
        assert body["message"].startswith(named), body
    status, body = await tenants.service.get("/analysis-templates")
    assert status == 200
    assert body["analysis_templates"] == []


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
@pytest.mark.parametrize(
    ("stored", "refused"),
    [(CATASTROPHIC, "pattern is not accepted"), (RECURSIVE, "leads back to a schema")],
    ids=["pattern", "recursive"],
)
async def test_a_hostile_analysis_beside_a_normal_call_does_not_stall_the_node(
    tenants: Tenants, tenant_llm: LlmStandIn, stored: dict[str, Any], refused: str
) -> None:
    service = tenants.service
    store = service.service.store
    org = await store.get_organization_by_name(ORGANIZATION)
    assert org is not None
    hostile = Assistant(
        id=str(uuid.uuid4()),
        organization_id=org.id,
        name="Stored before the limits",
        config=config_of(
            {
                "first_message": "Hello.",
                "llm_config": own_model(tenant_llm),
                "analysis_plan": {"structured_data_schema": stored},
            }
        ),
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
    assert analysis["structured_data_error"].startswith("the structured data schema is refused")
    assert refused in analysis["structured_data_error"]
    assert service.service.runner.speech.schema_checks.stats.checked == 0  # refused before a worker

    assert (await service.call(normal_id))["status"] == "in-progress"
    status, _ = await service.post(f"/calls/{normal_id}/control", {"type": "end-call"})
    assert status == 200
    await service.wait_status(normal_id, ("ended",), within=10)
    await asyncio.wait_for(call_finished(service.service.runner, normal_id), 10)
    normal = await service.call(normal_id)  # its transcript is stored once it has ended
    said = [m["content"] for m in normal["messages"] if m["role"] == "assistant"]
    assert said[:1] == [normal_first]


@pytest.mark.e2e
async def test_a_slow_check_runs_in_a_worker_and_never_holds_another_organizations_analysis(
    tenants: Tenants, tenant_llm: LlmStandIn
) -> None:
    """acme saves a schema every limit accepts whose check of its model's answer still takes
    minutes; globex's call ends while that check runs. globex's analysis is stored with
    its structured data while acme's check is still at work in a worker process (not the
    service's: the media ticks run here), which is killed at the deadline."""
    service = tenants.service
    checks = service.service.runner.speech.schema_checks
    # Long enough that the slow check still runs when globex's analysis is stored, whatever
    # the machine's load; the default is put back once it is (below).
    checks.set_deadline(600.0)
    acme = await service.service.store.get_organization_by_name(ORGANIZATION)
    assert acme is not None
    slow = {
        "name": "Slow extractor",
        "first_message": "Hello.",
        "llm_config": own_model(tenant_llm),
        "analysis_plan": {"structured_data_schema": SLOW_SCHEMA},
    }
    status, saved = await service.post("/assistants", slow)
    assert status == 201, saved
    status, placed = await service.post(
        "/calls/outbound", {"destination": SILENT_PARTY, "assistant_id": saved["id"]}
    )
    assert status == 200, placed
    slow_id = str(placed["call_id"])
    normal_first = "Good morning, this is globex."
    normal = {
        "first_message": normal_first,
        "llm_config": own_model(tenant_llm),
        "analysis_plan": {"structured_data_schema": DAY_SCHEMA},
    }
    resp = await service.client.post(
        "/calls/outbound",
        json={"destination": SILENT_PARTY, "assistant": normal},
        headers=tenants.as_other(),
    )
    assert resp.status == 200, await resp.text()
    normal_id = str((await resp.json())["call_id"])
    await service.wait_status(slow_id, ("in-progress",), within=15)
    await _other_call(tenants, normal_id, lambda call: call["status"] == "in-progress")

    status, _ = await service.post(f"/calls/{slow_id}/control", {"type": "end-call"})
    assert status == 200
    async with asyncio.timeout(30):
        while not checks.running_in(acme.id):
            await asyncio.sleep(0.05)
    (worker,) = checks.running_in(acme.id)
    assert worker != os.getpid()  # the slow check runs outside the service's process

    resp = await service.client.post(
        f"/calls/{normal_id}/control", json={"type": "end-call"}, headers=tenants.as_other()
    )
    assert resp.status == 200, await resp.text()
    ended = await _other_call(tenants, normal_id, lambda call: call["analysis_result"] is not None)
    assert ended["analysis_result"]["structured_data"] == EXTRACTED
    assert "structured_data_error" not in ended["analysis_result"]
    said = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert said[:1] == [normal_first]
    assert checks.running_in(acme.id) == [worker]  # still at work all along

    # The node's default deadline again: acme's check has run longer than that, so it ends
    # now, as at any deadline (rather than the test waiting out a long one).
    checks.set_deadline(DEADLINE_S)
    analysis = await _analysis(tenants, slow_id, within=60)
    assert analysis["structured_data"] is None
    assert analysis["structured_data_error"] == TOO_LONG
    assert checks.stats.timed_out == 1
    assert worker not in checks.worker_pids()
    assert not Path(f"/proc/{worker}").exists()  # killed (and reaped)


async def _other_call(
    tenants: Tenants, call_id: str, done: Callable[[dict[str, Any]], bool], within: float = 30.0
) -> dict[str, Any]:
    """globex's ``GET /calls/{id}`` until ``done`` holds."""
    async with asyncio.timeout(within):
        while True:
            resp = await tenants.service.client.get(f"/calls/{call_id}", headers=tenants.as_other())
            assert resp.status == 200, await resp.text()
            call: dict[str, Any] = await resp.json()
            if done(call):
                return call
            await asyncio.sleep(0.1)


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
