"""Post-call analysis: a summary and a 0–10 sentiment score, and what an assistant's analysis
plan asks for.

With a language model the call is summarised from a JSON-answering prompt; when there is
none, it fails or answers badly, an offline heuristic is used and marked
``"method": "heuristic"`` so nobody mistakes it for a model's judgement.

An ``AnalysisPlan`` (the assistant's ``analysis_plan``) adds its own summary instructions, a
JSON Schema of fields to extract (``structured_data``, validated against the schema off the
event loop and under a time limit, ``domain/tenant_schemas.py``: an answer that does not
match is dropped and ``structured_data_error`` says why) and a rubric
(``success_evaluation``). The heuristic extracts nothing and evaluates nothing (both null).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from voicedock.domain import tenant_schemas
from voicedock.pipeline.frames import ChatMessage, TranscriptEntry
from voicedock.pipeline.providers.base import Llm, ProviderError
from voicedock.pipeline.providers.rule_based import RuleBasedPolicy

log = logging.getLogger("voicedock.pipeline.analysis")

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
    structured_data_schema: Mapping[str, Any] | None = None
    success_evaluation_rubric: str | None = None


@dataclass(slots=True, frozen=True)
class AnalysisResult:
    summary: str
    sentiment: int
    method: Literal["llm", "heuristic"]
    # Only with an analysis plan that asks for them (absent from ``to_dict`` otherwise).
    structured_data: dict[str, Any] | None = None
    structured_data_error: str | None = None
    success_evaluation: str | None = None
    plan: AnalysisPlan | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
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


async def analyze(
    messages: Sequence[Message], llm: Llm | None, plan: AnalysisPlan | None = None
) -> AnalysisResult:
    """Analyse a finished call; never raises for provider trouble."""
    if llm is not None and not isinstance(llm, RuleBasedPolicy):
        try:
            return await _analyze_with_llm(messages, llm, plan)
        except (ProviderError, ValueError) as exc:
            log.warning("LLM analysis failed (%s); using heuristic", type(exc).__name__)
    return dataclasses.replace(heuristic_analysis(messages), plan=plan)


async def _analyze_with_llm(
    messages: Sequence[Message], llm: Llm, plan: AnalysisPlan | None
) -> AnalysisResult:
    transcript = "\n".join(f"{m.role}: {m.content}" for m in messages if m.role != "system")
    prompt = [ChatMessage("system", analysis_prompt(plan)), ChatMessage("user", transcript)]
    chunks: list[str] = []
    received = 0
    async for chunk in llm.stream(prompt):
        chunks.append(chunk)
        received += len(chunk)
        if received > MAX_ANSWER_CHARS:
            raise ValueError("analysis answer too long")
    text = "".join(chunks)
    if plan is None or plan.structured_data_schema is None:
        return parse_analysis(text, plan)
    # The organization's schema is applied to its own model's answer: off the event loop,
    # under a time limit (domain/tenant_schemas.py).
    try:
        return await _off_loop(text, plan)
    except TimeoutError:
        late = "checking the structured data took too long"
        return dataclasses.replace(
            parse_analysis(text, None), plan=plan, structured_data_error=late
        )


VALIDATION_TIMEOUT_S = 2.0
POOL_THREADS = 2
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The process's pool for tenant schemas (made on first use; it never takes the default
    executor's threads, where speech recognition runs)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="voicedock-schema")
        return _pool


async def _off_loop(text: str, plan: AnalysisPlan) -> AnalysisResult:
    """``parse_analysis`` in the schema pool, waited for at most ``VALIDATION_TIMEOUT_S``
    (TimeoutError). A thread cannot be stopped: a late one finishes, its result dropped."""
    loop = asyncio.get_running_loop()
    job = loop.run_in_executor(_executor(), functools.partial(parse_analysis, text, plan))
    return await asyncio.wait_for(job, VALIDATION_TIMEOUT_S)


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


def parse_analysis(text: str, plan: AnalysisPlan | None = None) -> AnalysisResult:
    """Parse the model's JSON answer (tolerating prose or code fences around it)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in analysis answer")
    data = json.loads(text[start : end + 1])
    summary = data.get("summary") if isinstance(data, dict) else None
    sentiment = data.get("sentiment") if isinstance(data, dict) else None
    if not isinstance(summary, str) or not summary.strip():
        raise ValueError("analysis summary missing")
    numeric = isinstance(sentiment, int | float) and not isinstance(sentiment, bool)
    if not numeric:
        raise ValueError("analysis sentiment missing")
    assert isinstance(sentiment, int | float)
    assert isinstance(data, dict)
    structured, error = _structured_data(data.get("structured_data"), plan)
    return AnalysisResult(
        summary.strip(),
        max(0, min(10, round(sentiment))),
        "llm",
        structured_data=structured,
        structured_data_error=error,
        success_evaluation=_evaluation(data.get("success_evaluation"), plan),
        plan=plan,
    )


def _evaluation(value: object, plan: AnalysisPlan | None) -> str | None:
    if plan is None or plan.success_evaluation_rubric is None or value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _structured_data(
    value: object, plan: AnalysisPlan | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The extracted fields when they match the plan's schema, else why not."""
    if plan is None or plan.structured_data_schema is None:
        return None, None
    if not isinstance(value, dict):
        return None, "the model extracted no object"
    error = tenant_schemas.validation_error(plan.structured_data_schema, value)
    return (None, error) if error is not None else (value, None)


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
