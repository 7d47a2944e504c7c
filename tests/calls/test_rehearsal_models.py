"""The operator's models of test runs: the persona's caller (its context, its next line, the
hang-up marker), the judge (its verdict, a malformed answer or a failing model a failed
expectation saying so), their settings, and the OpenAI-compatible client they go through."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from fakes.llm_standin import LlmStandIn
from voicedock.calls.rehearsal.grading import NO_JUDGE_MODEL, Grade, grade, grades, verdict
from voicedock.calls.rehearsal.judging import judged
from voicedock.calls.rehearsal.models import OperatorModel, operator_model
from voicedock.calls.rehearsal.persona import (
    HANG_UP,
    CallerModelFailed,
    PersonaCaller,
    caller_line,
    persona_messages,
)
from voicedock.calls.rehearsal.test_calls import Observed
from voicedock.config import RehearsalModelSettings, load_settings
from voicedock.domain.rehearsal import MAX_SAY_CHARS, HeardTurn, Judge, Outcome, Said, Scenario
from voicedock.errors import ConfigError, ProviderError
from voicedock.pipeline.frames import ChatMessage

pytestmark = pytest.mark.unit

PERSONA = "You are Ann, who wants to know when the clinic opens on Monday."
GREETING = HeardTurn(role="assistant", text="Hello, Riverside clinic.", at_ms=100)


class Scripted:
    """A ``ChatModel`` answering ``answer`` (or raising it), recording what it was asked."""

    def __init__(self, answer: str | Exception) -> None:
        self.answer_given = answer
        self.asked: list[list[ChatMessage]] = []

    async def answer(self, messages: Sequence[ChatMessage]) -> str:
        self.asked.append(list(messages))
        if isinstance(self.answer_given, Exception):
            raise self.answer_given
        return self.answer_given


def test_the_caller_model_plays_the_persona_and_hears_the_assistant_as_its_user() -> None:
    heard = [
        HeardTurn(role="caller", text="Hi.", at_ms=900),
        GREETING,
        HeardTurn(role="assistant", text="How can I help?", at_ms=500),
    ]
    messages = persona_messages(PERSONA, heard)
    assert messages[0].role == "system"
    assert PERSONA in messages[0].content
    assert HANG_UP in messages[0].content
    # In order of time; the assistant's turn heard in two pieces is one user message.
    assert [(m.role, m.content) for m in messages[1:]] == [
        ("user", "Hello, Riverside clinic. How can I help?"),
        ("assistant", "Hi."),
    ]
    # Nothing heard yet: the model is told so (a context never ends on the system message).
    assert persona_messages(PERSONA, [])[-1].role == "user"


@pytest.mark.parametrize(
    ("answer", "text", "hang_up"),
    [
        ("When do you open on Monday?", "When do you open on Monday?", False),
        ('  "Thanks,\n goodbye!" [Hang Up] ', '"Thanks, goodbye!"', True),
        ("[hang up]", "", True),
        ("", "", True),
        ("x" * (MAX_SAY_CHARS + 50), "x" * MAX_SAY_CHARS, False),
    ],
)
def test_the_caller_model_s_answer_is_its_next_line_and_the_marker_hangs_up(
    answer: str, text: str, hang_up: bool
) -> None:
    line = caller_line(answer)
    assert (line.text, line.hang_up) == (text, hang_up)


async def test_a_failing_caller_model_is_told_as_such() -> None:
    caller = PersonaCaller(Scripted(ProviderError("openai-compatible: HTTP 500")), PERSONA)
    with pytest.raises(CallerModelFailed, match="HTTP 500"):
        await caller.next_line([GREETING])
    model = Scripted("Bye. [hang up]")
    line = await PersonaCaller(model, PERSONA).next_line([GREETING])
    assert (line.text, line.hang_up) == ("Bye.", True)
    assert model.asked[0][-1].content == GREETING.text


@pytest.mark.parametrize(
    ("answer", "passed", "reason"),
    [
        ('{"pass": true, "reason": "It gave the hours."}', True, "It gave the hours."),
        ('```json\n{"pass": false, "reason": "No hours."}\n```', False, "No hours."),
        ('Verdict: {"reason": "ok", "pass": true} done', True, "ok"),
    ],
)
def test_the_judge_s_json_verdict_is_the_expectation_s(
    answer: str, passed: bool, reason: str
) -> None:
    assert verdict(answer) == Grade(passed, reason)


@pytest.mark.parametrize(
    "answer", ["It passed.", '{"pass": "yes", "reason": "ok"}', '{"pass": true}', "{not json}"]
)
def test_an_answer_that_is_no_verdict_fails_saying_so(answer: str) -> None:
    graded = verdict(answer)
    assert not graded.passed
    assert graded.reason.startswith("the judge model's answer is no verdict")
    assert answer[:5] in graded.reason


async def test_the_judge_is_sent_the_rubric_and_both_sides_and_a_failing_model_fails() -> None:
    observed = Observed(
        call_id="c",
        heard=[GREETING, HeardTurn(role="caller", text="When do you open?", at_ms=900)],
        transcript=[HeardTurn(role="caller", text="When do you open?", at_ms=800)],
    )
    model = Scripted('{"pass": true, "reason": "Polite."}')
    assert await grade(model, "Is polite.", observed) == Grade(True, "Polite.")
    (system, user) = model.asked[0]
    assert '"pass"' in system.content
    assert "Is polite." in user.content
    assert "assistant: Hello, Riverside clinic." in user.content
    assert user.content.count("caller: When do you open?") == 2  # both sides
    failing = Scripted(ProviderError("openai-compatible: timed out"))
    assert await grade(failing, "Is polite.", observed) == Grade(
        False, "the judge model failed (openai-compatible: timed out)"
    )
    assert await grade(None, "Is polite.", observed) == Grade(False, NO_JUDGE_MODEL)


async def test_a_scenario_s_judge_verdicts_carry_the_model_s_reason_pass_or_fail() -> None:
    scenario = Scenario(
        name="s",
        persona=PERSONA,
        expectations=[Judge(rubric="Gives the hours."), Said(contains="clinic"), Judge(rubric="x")],
    )
    observed = Observed(call_id="c", heard=[GREETING])
    model = Scripted('{"pass": false, "reason": "The hours were never given."}')
    graded = await grades(model, scenario, observed)
    assert sorted(graded) == [0, 2]
    result = judged(scenario, observed, graded)
    assert result.outcome == Outcome.FAILED
    assert result.reason == "expectations[0] (judge): The hours were never given."
    assert [v.passed for v in result.expectations] == [False, True, False]
    passing = judged(scenario, observed, {0: Grade(True, "Gave them."), 2: Grade(True, "ok")})
    assert passing.outcome == Outcome.PASSED
    assert passing.expectations[0].reason == "Gave them."
    # Without grades (no judge model), as before: the expectation fails saying so.
    assert judged(scenario, observed).expectations[0].reason == NO_JUDGE_MODEL
    # A call that could not be made is not graded.
    assert await grades(model, scenario, Observed(error="not answered")) == {}


async def test_the_operator_model_asks_its_openai_compatible_endpoint() -> None:
    async with LlmStandIn(reply="When do you open?") as llm:
        settings = RehearsalModelSettings(
            base_url=llm.base_url, model="caller-7b", api_key="sk-operator", temperature=0.3
        )
        model = operator_model(settings)
        assert isinstance(model, OperatorModel)
        answer = await model.answer([ChatMessage("system", "Play Ann."), ChatMessage("user", "Hi")])
        request = await llm.wait_request()
    assert answer == "When do you open?"
    assert (request.model, request.system_prompt, request.last_user_text) == (
        "caller-7b",
        "Play Ann.",
        "Hi",
    )
    assert request.authorization == "Bearer sk-operator"
    assert request.body["temperature"] == 0.3
    assert operator_model(RehearsalModelSettings()) is None


def test_the_models_are_the_operator_s_settings_the_judge_defaulting_to_the_caller(
    tmp_path: Path,
) -> None:
    file = tmp_path / "voicedock.toml"
    file.write_text(
        '[rehearsal.caller_model]\nbase_url = "http://127.0.0.1:11434/v1"\nmodel = "llama3.1"\n'
    )
    settings = load_settings(file, environ={"VOICEDOCK_REHEARSAL__CALLER_MODEL__API_KEY": "k"})
    rehearsal = settings.rehearsal
    assert (rehearsal.caller_model.model, rehearsal.caller_model.api_key) == ("llama3.1", "k")
    assert rehearsal.judge() == rehearsal.caller_model
    file.write_text(
        '[rehearsal.caller_model]\nmodel = "llama3.1"\n'
        '[rehearsal.judge_model]\nbase_url = "http://judge/v1"\nmodel = "judge"\n'
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(file, environ={})
    assert refused.value.key == "rehearsal.caller_model.base_url"
