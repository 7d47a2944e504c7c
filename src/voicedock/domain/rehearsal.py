"""Test suites as types: an organization's simulated callers and what each expects to hear, a
run of a suite against an assistant, and what the run found.

A suite (``Suite``, ``/test-suites``) holds scenarios; a scenario is a simulated caller (a
script of ``steps``, or a ``persona`` a language model plays) and ``expectations`` judged from
what the caller's leg heard and what the call left behind (its tool calls, transfer, end
reason, analysis, latency). ``tool_mocks`` replace the organization's tool server for the
scenario's call: the tool's canned result reaches the model, nothing is sent out.

Every size a tenant sets is bounded here (steps, texts, silences, scenarios per suite), so a
suite's run is bounded in time and work whatever it holds; a ``said`` expectation's regex runs
on a linear-time engine (``domain/tenant_regex.py``).

A run (``SuiteRun``) is stored when it is asked for and filled in as its scenarios end
(``ScenarioResult``: pass or fail, each expectation's verdict with its reason, both sides'
transcripts as heard).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from voicedock.domain.json import JsonValue
from voicedock.domain.records import utcnow
from voicedock.domain.tenant_regex import tenant_regex_refusal
from voicedock.validation import NOT_BLANK_LINE_PATTERN, NOT_BLANK_PATTERN

# Tenant bounds.
MAX_SCENARIOS = 20
MAX_STEPS = 40
MAX_EXPECTATIONS = 20
MAX_TOOL_MOCKS = 10
MAX_SAY_CHARS = 500
MAX_PERSONA_CHARS = 2000
MAX_RUBRIC_CHARS = 1000
MAX_PATTERN_CHARS = 200
MAX_NAME_CHARS = 200
MAX_KEYS = 32
MAX_SILENCE_S = 30.0
MAX_AFTER_MS = 30_000
MAX_SCENARIO_S = 300
DEFAULT_SCENARIO_S = 60
MAX_LATENCY_MS = 60_000
MAX_MOCK_RESULT_CHARS = 4000
KEYS_PATTERN = rf"^[0-9*#A-D]{{1,{MAX_KEYS}}}$"
# A JSON value the tenant wrote, compared as it is (a tool's arguments, an analysis field).
AnyJson = Annotated[object, Meta(extra_json_schema={"description": "Any JSON value."})]

Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS, pattern=NOT_BLANK_LINE_PATTERN)]
Line = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS, pattern=NOT_BLANK_LINE_PATTERN)]


def _text(max_length: int, description: str) -> Meta:
    return Meta(
        min_length=1, max_length=max_length, pattern=NOT_BLANK_PATTERN, description=description
    )


class _Part(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A part of a suite as the tenant wrote it."""


# -- the simulated caller's steps ---------------------------------------------------------------

When = Literal["after-assistant", "after-ms", "over-assistant"]


class SayStep(_Part, tag_field="type", tag="say", frozen=True):
    """Say ``text`` in ``voice`` (one of ``GET /voices``; the node's default voice when left
    out): once the assistant stops speaking (``after-assistant``), ``after_ms`` after the
    previous step (``after-ms``), or at once, over the assistant (``over-assistant``: a
    barge-in)."""

    text: Annotated[str, _text(MAX_SAY_CHARS, "What the caller says.")]
    voice: Line | None = None
    when: When = "after-assistant"
    after_ms: Annotated[int, Meta(ge=0, le=MAX_AFTER_MS)] = 0


class PressStep(_Part, tag_field="type", tag="press", frozen=True):
    """Press ``keys`` (DTMF) once the assistant stops speaking."""

    keys: Annotated[str, Meta(pattern=KEYS_PATTERN, description="Digits, *, # and A-D.")]


class SilenceStep(_Part, tag_field="type", tag="silence", frozen=True):
    """Stay silent for ``seconds`` (listening on)."""

    seconds: Annotated[float, Meta(gt=0, le=MAX_SILENCE_S)]


class HangUpStep(_Part, tag_field="type", tag="hang-up", frozen=True):
    """Hang up (the scenario's call ends here)."""


Step = SayStep | PressStep | SilenceStep | HangUpStep

# -- what the scenario expects ----------------------------------------------------------------


class Said(_Part, tag_field="type", tag="said", frozen=True):
    """The caller heard the assistant say ``contains`` (case and punctuation aside, a number
    up to twenty in words or digits alike) or
    something matching ``regex`` (case-insensitive): judged on the caller leg's transcript of
    the audio it received, not on what the engine thinks it said."""

    contains: Annotated[str, _text(MAX_SAY_CHARS, "Words heard, in order.")] | None = None
    regex: Annotated[str, _text(MAX_PATTERN_CHARS, "A regular expression (RE2).")] | None = None


class ToolCalled(_Part, tag_field="type", tag="tool-called", frozen=True):
    """The model called the tool ``name`` with (at least) ``arguments``."""

    name: Line
    arguments: dict[str, AnyJson] | None = None


class Transferred(_Part, tag_field="type", tag="transferred", frozen=True):
    """The call was transferred (to ``destination``, when given)."""

    destination: Line | None = None


class Ended(_Part, tag_field="type", tag="ended", frozen=True):
    """The call ended with ``end_reason``."""

    end_reason: Line


class AnalysisEquals(_Part, tag_field="type", tag="analysis", frozen=True):
    """The call's analysis has ``field`` (of its structured data, or ``summary`` /
    ``success_evaluation``) equal to ``equals``."""

    field: Line
    equals: AnyJson


class Latency(_Part, tag_field="type", tag="latency", frozen=True):
    """Voice to voice at the caller leg (from the end of the caller's words to the first sound
    of the answer), its 95th percentile at most ``p95_ms``."""

    p95_ms: Annotated[int, Meta(ge=1, le=MAX_LATENCY_MS)]


class Judge(_Part, tag_field="type", tag="judge", frozen=True):
    """A language model grades the call's transcript on ``rubric`` (when the operator
    configured one; otherwise the expectation fails saying so)."""

    rubric: Annotated[str, _text(MAX_RUBRIC_CHARS, "What a passing call does.")]


Expectation = Said | ToolCalled | Transferred | Ended | AnalysisEquals | Latency | Judge


class ToolMock(_Part, frozen=True):
    """The tool ``name`` answers ``result`` during the scenario (its server is not called)."""

    name: Line
    result: Annotated[str, Meta(max_length=MAX_MOCK_RESULT_CHARS)]


class Scenario(_Part, frozen=True):
    """A simulated caller and what it expects."""

    name: Name
    steps: Annotated[list[Step], Meta(max_length=MAX_STEPS)] = []
    persona: (
        Annotated[str, _text(MAX_PERSONA_CHARS, "The caller, for a language model.")] | None
    ) = None
    expectations: Annotated[list[Expectation], Meta(max_length=MAX_EXPECTATIONS)] = []
    tool_mocks: Annotated[list[ToolMock], Meta(max_length=MAX_TOOL_MOCKS)] = []
    max_duration_seconds: Annotated[int, Meta(ge=5, le=MAX_SCENARIO_S)] = DEFAULT_SCENARIO_S


Scenarios = Annotated[list[Scenario], Meta(min_length=1, max_length=MAX_SCENARIOS)]


def scenario_refusal(scenario: Scenario) -> tuple[str, str] | None:
    """What no schema states about a scenario: (the field's path within it, why)."""
    if not scenario.steps and scenario.persona is None:
        return "steps", "a scenario needs steps or a persona"
    for index, expectation in enumerate(scenario.expectations):
        where = f"expectations[{index}]"
        if isinstance(expectation, Said):
            if (expectation.contains is None) == (expectation.regex is None):
                return where, "a said expectation needs one of contains and regex"
            if expectation.regex is not None:
                why = tenant_regex_refusal(expectation.regex)
                if why is not None:
                    return f"{where}.regex", why
    names = [mock.name for mock in scenario.tool_mocks]
    if len(set(names)) != len(names):
        return "tool_mocks", "each tool is mocked once"
    return None


# -- records --------------------------------------------------------------------------------


@dataclass(slots=True)
class Suite:
    """An organization's test suite (``/test-suites``): its scenarios, and the assistant they
    test unless a run names another."""

    id: str
    organization_id: str
    name: str
    scenarios: list[Scenario]
    assistant_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # the run could not be carried out (no PBX, a call that could not start)


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"


class Verdict(msgspec.Struct, kw_only=True, frozen=True):
    """One expectation judged: ``index`` in its scenario, its ``type``, and why it failed."""

    index: int
    type: str
    passed: bool
    reason: str | None = None


class HeardTurn(msgspec.Struct, kw_only=True, frozen=True):
    """A turn as one side of the test call heard it: ``role`` ``assistant`` (what the caller
    leg transcribed) or ``caller`` (what it said), ``at_ms`` from the answer."""

    role: Literal["assistant", "caller"]
    text: str
    at_ms: int


class WouldTransfer(msgspec.Struct, kw_only=True, frozen=True):
    """A transfer the test call asked for (by ``POST /calls/{id}/control`` or a tool): a test
    call never leaves the PBX, so it was recorded, never dialled; ``at_ms`` from the answer."""

    destination: str
    mode: str
    at_ms: int


class ScenarioResult(msgspec.Struct, kw_only=True, frozen=True):
    """A scenario of a run once it ended."""

    name: str
    outcome: Outcome
    reason: str | None = None  # the first failed expectation's, or why it could not run
    call_id: str | None = None
    expectations: list[Verdict] = []
    heard: list[HeardTurn] = []  # the caller leg's side, in order
    transcript: list[HeardTurn] = []  # the engine's transcript of the call
    latency_p95_ms: int | None = None
    duration_ms: int | None = None
    recording_url: str | None = None  # the test call's recording, when it was recorded
    would_transfer: list[WouldTransfer] = []  # the transfers asked for, none dialled


@dataclass(slots=True)
class SuiteRun:
    """A run of a suite: against the suite's assistant, another (``assistant_id``), one of
    their versions (``assistant_version``, a draft's included) or an inline configuration
    (``assistant``, not saved)."""

    id: str
    organization_id: str
    suite_id: str
    status: RunStatus
    assistant_id: str | None = None
    assistant: dict[str, JsonValue] | None = None
    assistant_version: int | None = None  # a version of the saved assistant named by the run
    results: list[ScenarioResult] = field(default_factory=list)
    error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None


__all__ = [
    "MAX_SCENARIOS",
    "AnalysisEquals",
    "Ended",
    "Expectation",
    "HangUpStep",
    "HeardTurn",
    "Judge",
    "Latency",
    "Outcome",
    "PressStep",
    "RunStatus",
    "Said",
    "SayStep",
    "Scenario",
    "ScenarioResult",
    "SilenceStep",
    "Step",
    "Suite",
    "SuiteRun",
    "ToolCalled",
    "ToolMock",
    "Transferred",
    "Verdict",
    "WouldTransfer",
    "scenario_refusal",
]
