"""An assistant's analysis plan: the extracted fields are kept only when they match the
schema; the offline heuristic extracts nothing and says so."""

from __future__ import annotations

import json

import pytest

from voicedock.pipeline.analysis import AnalysisPlan, analysis_prompt, analyze, parse_analysis
from voicedock.pipeline.frames import TranscriptEntry

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


def answer(structured: object) -> str:
    doc = {"summary": "Booked.", "sentiment": 7, "structured_data": structured}
    return json.dumps({**doc, "success_evaluation": True})


def test_matching_fields_land_in_structured_data() -> None:
    result = parse_analysis(answer({"day": "Monday", "people": 2}), PLAN).to_dict()
    assert result["structured_data"] == {"day": "Monday", "people": 2}
    assert "structured_data_error" not in result
    assert result["success_evaluation"] == "true"


def test_fields_that_do_not_match_the_schema_are_dropped_with_the_reason() -> None:
    result = parse_analysis(answer({"day": "Monday", "people": "two"}), PLAN).to_dict()
    assert result["structured_data"] is None
    assert result["structured_data_error"].startswith("people: ")


def test_the_prompt_carries_the_plan() -> None:
    prompt = analysis_prompt(PLAN)
    assert "Name the day." in prompt
    assert '"required": ["day"]' in prompt
    assert "Was it booked?" in prompt


async def test_without_a_model_the_heuristic_extracts_nothing() -> None:
    said = [TranscriptEntry("user", "Monday please, thanks.", 0.0, 1.0)]
    result = (await analyze(said, None, PLAN)).to_dict()
    assert result["method"] == "heuristic"
    assert result["structured_data"] is None
    assert result["success_evaluation"] is None


def test_without_a_plan_the_analysis_is_as_before() -> None:
    assert set(parse_analysis(answer({"day": "x"})).to_dict()) == {"summary", "sentiment", "method"}
