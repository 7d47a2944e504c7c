"""An assistant's analysis plan: the extracted fields are kept only when the check finds they
match the schema; the offline heuristic extracts nothing and says so."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from voicedock.domain.tenant_schemas import validation_error
from voicedock.pipeline.analysis.post_call import (
    NOT_CHECKED,
    AnalysisPlan,
    analysis_prompt,
    analyze,
)
from voicedock.pipeline.frames import TranscriptEntry

from .fakes import FakeLlm

pytestmark = pytest.mark.unit

PLAN = AnalysisPlan(
    summary_prompt="Name the day.",
    structured_data_schema={
        "type": "object",
        "properties": {"day": {"type": "string"}, "people": {"type": "integer"}},
        "required": ["day"],
    },
    success_evaluation_rubric="Was it booked?",
)
SAID = [TranscriptEntry("user", "Monday please, thanks.", 0.0, 1.0)]


def answer(structured: object) -> str:
    doc = {"summary": "Booked.", "sentiment": 7, "structured_data": structured}
    return json.dumps({**doc, "success_evaluation": True})


async def in_process(schema: Mapping[str, Any], answer: str) -> str | None:
    """The check the node's schema workers make, made here (the workers have their tests)."""
    return validation_error(schema, json.loads(answer)["structured_data"])


async def analysed(structured: object) -> dict[str, Any]:
    llm = FakeLlm([answer(structured)])
    return (await analyze(SAID, llm, PLAN, check=in_process)).to_dict()


async def test_matching_fields_land_in_structured_data() -> None:
    result = await analysed({"day": "Monday", "people": 2})
    assert result["structured_data"] == {"day": "Monday", "people": 2}
    assert "structured_data_error" not in result
    assert result["success_evaluation"] == "true"


async def test_fields_that_do_not_match_the_schema_are_dropped_with_the_reason() -> None:
    result = await analysed({"day": "Monday", "people": "two"})
    assert result["structured_data"] is None
    assert result["structured_data_error"].startswith("people: ")
    result = await analysed(["Monday"])
    assert result["structured_data_error"] == "the model extracted no object"


async def test_fields_nobody_checked_are_dropped() -> None:
    llm = FakeLlm([answer({"day": "Monday"})])
    result = (await analyze(SAID, llm, PLAN)).to_dict()
    assert result["structured_data"] is None
    assert result["structured_data_error"] == NOT_CHECKED


def test_the_prompt_carries_the_plan() -> None:
    prompt = analysis_prompt(PLAN)
    assert "Name the day." in prompt
    assert '"required": ["day"]' in prompt
    assert "Was it booked?" in prompt


async def test_without_a_model_the_heuristic_extracts_nothing() -> None:
    result = (await analyze(SAID, None, PLAN)).to_dict()
    assert result["method"] == "heuristic"
    assert result["structured_data"] is None
    assert result["success_evaluation"] is None


async def test_an_answer_nested_too_deeply_or_not_finite_falls_back_to_the_heuristic() -> None:
    deep = '{"summary": "x", "sentiment": 5, "structured_data": ' + "[" * 50_000 + "}"
    for text in (deep, '{"summary": "x", "sentiment": Infinity}'):
        result = await analyze(SAID, FakeLlm([text]), PLAN, check=in_process)
        assert result.method == "heuristic"


async def test_a_model_too_slow_to_answer_gives_the_heuristic() -> None:
    slow = FakeLlm([answer({"day": "Monday"})], first_token_delay=5.0)
    result = await analyze(SAID, slow, PLAN, check=in_process, answer_timeout_s=0.05)
    assert result.method == "heuristic"
    assert result.structured_data is None


async def test_without_a_plan_the_analysis_is_as_before() -> None:
    result = await analyze(SAID, FakeLlm([answer({"day": "x"})]))
    assert set(result.to_dict()) == {"summary", "sentiment", "method"}
