"""Post-call analysis: a summary and a 0–10 sentiment score.

With a language model the call is summarised from a JSON-answering prompt; when there is
none, it fails or answers badly, an offline heuristic is used and marked
``"method": "heuristic"`` so nobody mistakes it for a model's judgement.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

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


@dataclass(slots=True, frozen=True)
class AnalysisResult:
    summary: str
    sentiment: int
    method: Literal["llm", "heuristic"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Message = ChatMessage | TranscriptEntry


async def analyze(messages: Sequence[Message], llm: Llm | None) -> AnalysisResult:
    """Analyse a finished call; never raises for provider trouble."""
    if llm is not None and not isinstance(llm, RuleBasedPolicy):
        try:
            return await _analyze_with_llm(messages, llm)
        except (ProviderError, ValueError) as exc:
            log.warning("LLM analysis failed (%s); using heuristic", type(exc).__name__)
    return heuristic_analysis(messages)


async def _analyze_with_llm(messages: Sequence[Message], llm: Llm) -> AnalysisResult:
    transcript = "\n".join(f"{m.role}: {m.content}" for m in messages if m.role != "system")
    prompt = [ChatMessage("system", ANALYSIS_PROMPT), ChatMessage("user", transcript)]
    text = "".join([chunk async for chunk in llm.stream(prompt)])
    return parse_analysis(text)


def parse_analysis(text: str) -> AnalysisResult:
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
    return AnalysisResult(summary.strip(), max(0, min(10, round(sentiment))), "llm")


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
