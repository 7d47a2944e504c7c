"""Tenant JSON Schemas: bounded, no regular expressions, applied off the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from voicedock.domain.tenant_schemas import check_tenant_schema, validation_error
from voicedock.errors import BadRequest
from voicedock.pipeline import analysis
from voicedock.pipeline.analysis import AnalysisPlan

pytestmark = pytest.mark.unit


def test_a_property_called_pattern_is_a_name_not_a_keyword() -> None:
    check_tenant_schema({"type": "object", "properties": {"pattern": {"type": "string"}}}, "s")
    with pytest.raises(BadRequest, match=r"^s\.items\.pattern is not accepted"):
        check_tenant_schema({"type": "array", "items": {"pattern": "a"}}, "s")


def test_tool_parameters_may_keep_patterns_but_not_their_size() -> None:
    params = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[0-9]+$"}}}
    check_tenant_schema(params, "tools[0].parameters", applied=False)
    big = {"type": "object", "description": "x" * 20_000}
    with pytest.raises(BadRequest, match="at most 16384 bytes"):
        check_tenant_schema(big, "tools[0].parameters", applied=False)


def test_a_schema_stored_before_the_limits_is_refused_when_applied() -> None:
    schema = {"type": "object", "properties": {"c": {"type": "string", "pattern": "^(a+)+$"}}}
    error = validation_error(schema, {"c": "a" * 40 + "!"})  # would backtrack for ages
    assert error is not None
    assert error.startswith("the structured data schema is refused: schema.properties.c.pattern")
    assert "larger than" in str(validation_error({"type": "object"}, {"c": "x" * 70_000}))


async def test_a_slow_check_is_given_up_on_and_the_loop_keeps_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()

    def slow(text: str, plan: AnalysisPlan | None = None) -> analysis.AnalysisResult:
        if plan is not None:
            release.wait(5)
        return analysis.AnalysisResult("A call.", 5, "llm", plan=plan)

    monkeypatch.setattr(analysis, "parse_analysis", slow)
    monkeypatch.setattr(analysis, "VALIDATION_TIMEOUT_S", 0.2)
    plan = AnalysisPlan(structured_data_schema={"type": "object"})
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    try:
        result = await analysis._off_loop(json.dumps({"summary": "x", "sentiment": 1}), plan)
    except TimeoutError:
        result = None
    finally:
        release.set()
        ticker.cancel()
    assert result is None
    assert time.monotonic() - started < 1.0
    assert ticks >= 10  # the event loop ran meanwhile
