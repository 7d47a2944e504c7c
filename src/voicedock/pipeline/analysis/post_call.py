"""Post-call analysis: a summary and a 0–10 sentiment score, and what an assistant's analysis
plan asks for.

With a language model the call is summarised from a JSON-answering prompt; when there is
none, it fails or answers badly, an offline heuristic is used and marked
``"method": "heuristic"`` so nobody mistakes it for a model's judgement.

An ``AnalysisPlan`` (the assistant's ``analysis_plan``) adds its own summary instructions, a
JSON Schema of fields to extract (``structured_data``) and a rubric (``success_evaluation``).
The fields the model extracted are checked against the schema by the ``StructuredDataCheck``
the caller gives (the node's schema workers, processes killed at a deadline:
``schema_checks.py``; the limits of a schema, ``domain/tenant_schemas.py``): an answer that does
not match, or could not be checked, is dropped and ``structured_data_error`` says why. The
heuristic extracts nothing and evaluates nothing (both null).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.pipeline.analysis.llm_answer import bounded_answer
from voicedock.pipeline.analysis.schema_checks import StructuredDataCheck
from voicedock.pipeline.frames import ChatMessage, TranscriptEntry
from voicedock.pipeline.providers.base import Llm, ProviderError
from voicedock.pipeline.providers.rule_based import RuleBasedPolicy

log = logging.getLogger("voicedock.pipeline.analysis.post_call")

ANALYSIS_PROMPT = (
    "You analyse phone calls. Read the transcript and answer with JSON only, exactly "
    '{"summary": "<one or two sentences>", "sentiment": <integer 0-10, 0 = very negative, '
    "5 = neutral, 10 = very positive, for the caller>}."
)

_POSITIVE = frozenset(
    [
        "great",
        "good",
        "thanks",
        "thank",
        "perfect",
        "excellent",
        "happy",
        "glad",
        "wonderful",
        "yes",
        "helpful",
        "appreciate",
        "love",
        "nice",
        "awesome",
        "fine",
        "sure",
    ]
)
_NEGATIVE = frozenset(
    [
        "bad",
        "angry",
        "terrible",
        "awful",
        "problem",
        "complaint",
        "wrong",
        "never",
        "cancel",
        "upset",
        "annoyed",
        "unhappy",
        "frustrated",
        "disappointed",
        "worst",
        "hate",
        "refund",
        "broken",
        "no",
        "not",
    ]
)
_WORD = re.compile(r"[a-z']+")
MAX_ANSWER_CHARS = 100_000  # a longer analysis answer is not read (the heuristic is used)


@dataclass(slots=True, frozen=True)
class AnalysisPlan:
    summary_prompt: str | None = None
    structured_data_schema: Mapping[str, JsonValue] | None = None
    success_evaluation_rubric: str | None = None


@dataclass(slots=True, frozen=True)
class AnalysisResult:
    summary: str
    sentiment: int
    method: Literal["llm", "heuristic"]
    # Only with an analysis plan that asks for them (absent from ``to_dict`` otherwise).
    structured_data: JsonObject | None = None
    structured_data_error: str | None = None
    success_evaluation: str | None = None
    plan: AnalysisPlan | None = None

    def to_dict(self) -> JsonObject:
        out: JsonObject = {
            "summary": self.summary,
            "sentiment": self.sentiment,
            "method": self.method,
        }
        plan = self.plan
        if plan is not None and plan.structured_data_schema is not None:
            out["structured_data"] = self.structured_data
            if self.structured_data_error is not None:
                out["structured_data_error"] = self.structured_data_error
        if plan is not None and plan.success_evaluation_rubric is not None:
            out["success_evaluation"] = self.success_evaluation
        return out


Message = ChatMessage | TranscriptEntry


def redacted(result: AnalysisResult, redact: Callable[[str], str]) -> AnalysisResult:
    """``result`` with its texts (summary, success evaluation, structured data's strings)
    redacted: what the model wrote may repeat what its input never held (or held, when the
    model saw it clear)."""
    data = result.structured_data
    return dataclasses.replace(
        result,
        summary=redact(result.summary),
        success_evaluation=redact(result.success_evaluation)
        if result.success_evaluation is not None
        else None,
        structured_data=_redacted_json(data, redact) if data is not None else None,
    )


def _redacted_json(value: JsonObject, redact: Callable[[str], str]) -> JsonObject:
    def each(item: JsonValue) -> JsonValue:
        if isinstance(item, str):
            return redact(item)
        if isinstance(item, list):
            return [each(i) for i in item]
        if isinstance(item, dict):
            return {k: each(v) for k, v in item.items()}
        return item

    return {k: each(v) for k, v in value.items()}


NOT_CHECKED = "the structured data was not checked (no schema check was given)"


async def analyze(
    messages: Sequence[Message],
    llm: Llm | None,
    plan: AnalysisPlan | None = None,
    *,
    check: StructuredDataCheck | None = None,
    answer_timeout_s: float | None = None,
) -> AnalysisResult:
    """Analyse a finished call; never raises for provider trouble. The model's answer is
    waited for at most ``answer_timeout_s`` (then the heuristic is used); the fields it
    extracted are kept if ``check`` (bounded in time itself) finds they match the plan's
    schema."""
    if llm is not None and not isinstance(llm, RuleBasedPolicy):
        try:
            async with asyncio.timeout(answer_timeout_s):
                text = await _ask(messages, llm, plan)
            answer = _parse(text, plan)
        except TimeoutError:
            log.warning("LLM analysis took too long; using heuristic")
        except (ProviderError, ValueError) as exc:
            log.warning("LLM analysis failed (%s); using heuristic", type(exc).__name__)
        else:
            return await _checked(answer, plan, check)
    return dataclasses.replace(heuristic_analysis(messages), plan=plan)


async def _ask(messages: Sequence[Message], llm: Llm, plan: AnalysisPlan | None) -> str:
    transcript = "\n".join(f"{m.role}: {m.content}" for m in messages if m.role != "system")
    prompt = [ChatMessage("system", analysis_prompt(plan)), ChatMessage("user", transcript)]
    return await bounded_answer(llm, prompt, MAX_ANSWER_CHARS)


async def _checked(
    answer: _Answer, plan: AnalysisPlan | None, check: StructuredDataCheck | None
) -> AnalysisResult:
    """The answer's result with the extracted fields if they match the plan's schema, else
    why not."""
    if plan is None or plan.structured_data_schema is None:
        return answer.result
    extracted = json_object(answer.extracted)
    if extracted is None:
        error: str | None = "the model extracted no object"
    elif check is None:
        error = NOT_CHECKED
    else:
        error = await check(plan.structured_data_schema, answer.source)
    kept = extracted if error is None else None
    return dataclasses.replace(answer.result, structured_data=kept, structured_data_error=error)


def analysis_prompt(plan: AnalysisPlan | None) -> str:
    """The instructions of the analysing model: the base answer, and what ``plan`` adds."""
    if plan is None:
        return ANALYSIS_PROMPT
    parts = [ANALYSIS_PROMPT]
    if plan.summary_prompt:
        parts.append(f"How to write the summary: {plan.summary_prompt}")
    if plan.structured_data_schema is not None:
        schema = json.dumps(plan.structured_data_schema)
        parts.append(
            'Also answer "structured_data": an object with what the call said, matching this '
            f"JSON Schema: {schema}"
        )
    if plan.success_evaluation_rubric:
        parts.append(
            'Also answer "success_evaluation": a short string judging the call by this '
            f"rubric: {plan.success_evaluation_rubric}"
        )
    return "\n".join(parts)


@dataclass(slots=True, frozen=True)
class _Answer:
    result: AnalysisResult  # without the extracted fields
    extracted: object  # the answer's structured_data, not checked yet
    source: str  # the answer's JSON text (what a schema worker parses for itself)


def _parse(text: str, plan: AnalysisPlan | None) -> _Answer:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in analysis answer")
    source = text[start : end + 1]
    try:
        data = json.loads(source)
    except RecursionError:
        raise ValueError("analysis answer nested too deeply") from None
    summary = data.get("summary") if isinstance(data, dict) else None
    sentiment = data.get("sentiment") if isinstance(data, dict) else None
    if not isinstance(summary, str) or not summary.strip():
        raise ValueError("analysis summary missing")
    if (
        not isinstance(sentiment, int | float)
        or isinstance(sentiment, bool)
        or not math.isfinite(sentiment)
    ):
        raise ValueError("analysis sentiment missing")
    assert isinstance(data, dict)
    result = AnalysisResult(
        summary.strip(),
        max(0, min(10, round(sentiment))),
        "llm",
        success_evaluation=_evaluation(data.get("success_evaluation"), plan),
        plan=plan,
    )
    return _Answer(result, data.get("structured_data"), source)


def _evaluation(value: object, plan: AnalysisPlan | None) -> str | None:
    if plan is None or plan.success_evaluation_rubric is None or value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def heuristic_analysis(messages: Sequence[Message]) -> AnalysisResult:
    user = [m.content for m in messages if m.role == "user" and m.content.strip()]
    assistant_turns = sum(1 for m in messages if m.role == "assistant")
    if not user:
        summary = f"The caller did not speak; the assistant spoke {assistant_turns} time(s)."
        return AnalysisResult(summary, 5, "heuristic")
    words = [w for text in user for w in _WORD.findall(text.lower())]
    score = sum(w in _POSITIVE for w in words) - sum(w in _NEGATIVE for w in words)
    sentiment = max(0, min(10, 5 + score))
    opening = " ".join(user[0].split()[:20])
    summary = (
        f"{len(user)} caller turn(s) and {assistant_turns} assistant turn(s). "
        f'The caller opened with: "{opening}".'
    )
    return AnalysisResult(summary, sentiment, "heuristic")
