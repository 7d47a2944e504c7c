"""A scenario's expectations judged from what its test call left (``Observed``): each a
verdict with the reason it failed, the scenario's outcome the first failed one's. A ``judge``
expectation's verdict is the judge model's (``grading.py``), with its reason either way."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from voicedock.calls.rehearsal.grading import NO_JUDGE_MODEL, Grade
from voicedock.calls.rehearsal.test_calls import Observed, ToolUse
from voicedock.domain.json import JsonValue
from voicedock.domain.redaction.spoken import TEEN_WORDS, TENS_WORDS, UNIT_WORDS
from voicedock.domain.rehearsal import (
    AnalysisEquals,
    Ended,
    Expectation,
    Judge,
    Latency,
    Outcome,
    Said,
    Scenario,
    ScenarioResult,
    ToolCalled,
    Transferred,
    Verdict,
)
from voicedock.domain.tenant_regex import TenantRegex
from voicedock.percentile import percentile

_WORD = re.compile(r"[^\w]+")
# A number said is written either way by a recognizer ("nine to five", "9 to 5").
_NUMBERS = {
    word: str(value) for value, word in enumerate((*UNIT_WORDS, *TEEN_WORDS, TENS_WORDS[0]))
}
QUOTED_AT_MOST = 200  # characters of what was heard quoted in a reason
MAX_MATCHED = 20_000  # characters of what was heard a regex is matched against


def words(text: str) -> str:
    """``text`` as words (lower case, punctuation and spacing aside, numbers up to twenty as
    digits)."""
    return " ".join(_NUMBERS.get(word, word) for word in _WORD.sub(" ", text.lower()).split())


def heard_text(observed: Observed) -> str:
    """What the caller leg heard of the assistant, in order, as one text."""
    return " ".join(turn.text for turn in observed.heard if turn.role == "assistant")


def _quoted(text: str) -> str:
    short = text if len(text) <= QUOTED_AT_MOST else text[:QUOTED_AT_MOST] + "..."
    return f'"{short}"'


def _said(expected: Said, observed: Observed) -> str | None:
    heard = heard_text(observed)
    if expected.contains is not None:
        if words(expected.contains) in words(heard):
            return None
        return f"{_quoted(expected.contains)} not heard; the caller heard {_quoted(heard)}"
    assert expected.regex is not None
    if TenantRegex(expected.regex).search(heard[:MAX_MATCHED]):
        return None
    return f"nothing heard matches /{expected.regex}/; the caller heard {_quoted(heard)}"


def contains(found: JsonValue, expected: object) -> bool:
    """``found`` holds ``expected``: an object's keys at least (recursively), else equal."""
    if isinstance(expected, Mapping):
        return isinstance(found, dict) and all(
            key in found and contains(found[key], value) for key, value in expected.items()
        )
    return found == expected


def _tool_called(expected: ToolCalled, tools: Sequence[ToolUse]) -> str | None:
    named = [use for use in tools if use.name == expected.name]
    if not named:
        called = ", ".join(sorted({use.name for use in tools})) or "none"
        return f"{expected.name} was not called (tools called: {called})"
    wanted = expected.arguments or {}
    if any(contains(use.arguments, wanted) for use in named):
        return None
    return f"{expected.name} was called, never with the arguments {wanted}"


def percentile_95(values: Sequence[int]) -> int | None:
    """The 95th percentile (nearest rank) of ``values``; None: none."""
    return percentile(values, 0.95)


def _analysis_value(observed: Observed, field: str) -> object:
    call = observed.call
    analysis = call.analysis_result if call is not None else None
    if analysis is None:
        return None
    data = analysis.get("structured_data")
    if isinstance(data, dict) and field in data:
        return data[field]
    return analysis.get(field)


def reason(expectation: Expectation, observed: Observed) -> str | None:
    """Why ``expectation`` failed on what ``observed`` shows (None: it held)."""
    call = observed.call
    if isinstance(expectation, Said):
        return _said(expectation, observed)
    if isinstance(expectation, ToolCalled):
        return _tool_called(expectation, observed.tools)
    if isinstance(expectation, Transferred):
        asked = [t.destination for t in observed.would_transfer]
        if call is not None and call.transferred_to is not None:
            asked.append(call.transferred_to)
        if not asked:
            return "the call was not transferred"
        if expectation.destination is not None and expectation.destination not in asked:
            return f"would transfer to {', '.join(asked)}, not {expectation.destination}"
        return None
    if isinstance(expectation, Ended):
        ended = None if call is None else call.end_reason
        return None if ended == expectation.end_reason else f"the call ended {ended}"
    if isinstance(expectation, AnalysisEquals):
        value = _analysis_value(observed, expectation.field)
        if value == expectation.equals:
            return None
        return f"the analysis has {expectation.field} = {value!r}"
    if isinstance(expectation, Latency):
        p95 = percentile_95(observed.latencies_ms)
        if p95 is None:
            return "no answer was heard to measure"
        return None if p95 <= expectation.p95_ms else f"the 95th percentile was {p95} ms"
    assert isinstance(expectation, Judge)
    return NO_JUDGE_MODEL


def _tag(expectation: Expectation) -> str:
    tag = type(expectation).__struct_config__.tag
    return str(tag)


def judged(
    scenario: Scenario, observed: Observed, graded: Mapping[int, Grade] | None = None
) -> ScenarioResult:
    """The scenario's result: each expectation's verdict (a judge expectation's from
    ``graded``, by its index); failed when one failed (the first one's reason, naming it), an
    error when the call itself could not be made."""
    verdicts = []
    for index, expectation in enumerate(scenario.expectations):
        tag = _tag(expectation)
        grade = (graded or {}).get(index)
        if grade is not None:
            verdicts.append(
                Verdict(index=index, type=tag, passed=grade.passed, reason=grade.reason)
            )
            continue
        why = None if observed.error is not None else reason(expectation, observed)
        verdicts.append(Verdict(index=index, type=tag, passed=why is None, reason=why))
    failed = next((v for v in verdicts if not v.passed), None)
    if observed.error is not None:
        outcome, why = Outcome.ERROR, observed.error
        verdicts = [
            Verdict(index=v.index, type=v.type, passed=False, reason="not judged") for v in verdicts
        ]
    elif failed is not None:
        outcome, why = (
            Outcome.FAILED,
            f"expectations[{failed.index}] ({failed.type}): {failed.reason}",
        )
    else:
        outcome, why = Outcome.PASSED, None
    return ScenarioResult(
        name=scenario.name,
        outcome=outcome,
        reason=why,
        call_id=observed.call_id,
        expectations=verdicts,
        heard=observed.heard,
        transcript=observed.transcript,
        latency_p95_ms=percentile_95(observed.latencies_ms),
        duration_ms=observed.duration_ms,
        recording_url=None if observed.call is None else observed.call.recording_url,
        would_transfer=observed.would_transfer,
    )


__all__ = ["contains", "judged", "percentile_95", "reason", "words"]
