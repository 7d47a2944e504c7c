"""A ``judge`` expectation graded by the operator's judge model (``[rehearsal.judge_model]``,
else the caller model): the rubric and both sides of the test call as heard (the caller leg's
transcript of what it heard and what it said; the engine's transcript, what the assistant
heard) are sent, and a JSON verdict ``{"pass": bool, "reason": str}`` is expected back.

An answer that is no such verdict, or a model that fails, fails the expectation saying so;
the run goes on."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from voicedock.calls.rehearsal.models import ChatModel
from voicedock.calls.rehearsal.test_calls import Observed
from voicedock.domain.rehearsal import HeardTurn, Judge, Scenario
from voicedock.errors import ProviderError
from voicedock.pipeline.frames import ChatMessage

NO_JUDGE_MODEL = "no judge model is configured on this node"
MAX_REASON_CHARS = 500  # of the model's reason, kept in the verdict
INSTRUCTIONS = """\
You grade a phone call between a business's voice assistant and a caller against a rubric. \
Answer with one JSON object and nothing else: {"pass": true or false, "reason": "why, in one \
sentence"}."""
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)  # the verdict, fenced or with words around it


class _Verdict(msgspec.Struct):
    passed: bool = msgspec.field(name="pass")
    reason: str


_decode = msgspec.json.Decoder(_Verdict).decode


@dataclass(frozen=True, slots=True)
class Grade:
    """A judge expectation's verdict and its reason (the model's, or why there is none)."""

    passed: bool
    reason: str


def _lines(turns: Sequence[HeardTurn]) -> str:
    return "\n".join(f"{turn.role}: {turn.text}" for turn in turns) or "(nothing)"


def judge_messages(rubric: str, observed: Observed) -> list[ChatMessage]:
    """What the judge model is asked: the rubric, both sides' transcripts."""
    call = (
        f"Rubric:\n{rubric}\n\n"
        "The call as the caller heard it (the assistant's words as transcribed at the caller's "
        f"phone, the caller's as said):\n{_lines(observed.heard)}\n\n"
        "The call as the assistant heard it (its transcript):\n"
        f"{_lines(observed.transcript)}"
    )
    return [ChatMessage("system", INSTRUCTIONS), ChatMessage("user", call)]


def _shortened(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "..."


def verdict(answer: str) -> Grade:
    """The judge model's ``answer`` as a grade (a fail when it is no verdict)."""
    found = _OBJECT.search(answer)
    try:
        given = _decode(found.group() if found is not None else answer)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Grade(
            False,
            'the judge model\'s answer is no verdict {"pass": bool, "reason": str}: '
            f'"{_shortened(answer)}"',
        )
    return Grade(given.passed, _shortened(given.reason) or ("passed" if given.passed else "failed"))


async def grade(model: ChatModel | None, rubric: str, observed: Observed) -> Grade:
    """``rubric`` graded on ``observed`` (a fail saying why when there is no judge)."""
    if model is None:
        return Grade(False, NO_JUDGE_MODEL)
    try:
        answer = await model.answer(judge_messages(rubric, observed))
    except ProviderError as exc:
        return Grade(False, f"the judge model failed ({exc})")
    return verdict(answer)


async def grades(
    model: ChatModel | None, scenario: Scenario, observed: Observed
) -> dict[int, Grade]:
    """Each judge expectation of ``scenario`` graded, by its index (none when the call
    itself could not be made)."""
    if observed.error is not None:
        return {}
    return {
        index: await grade(model, expectation.rubric, observed)
        for index, expectation in enumerate(scenario.expectations)
        if isinstance(expectation, Judge)
    }


__all__ = ["NO_JUDGE_MODEL", "Grade", "grade", "grades", "judge_messages", "verdict"]
