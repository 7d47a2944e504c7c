"""``/test-suites`` (an organization's simulated callers and what each expects) and their runs
(``POST /test-suites/{id}/runs``, ``GET /test-runs/{id}``).

A scenario's parts are the domain's types (``domain/rehearsal.py``: their bounds are there);
what no schema states (a said expectation's one of contains and regex, a simple regex, steps or
a persona) is checked by ``calls/rehearsal/suites.py``, 400 naming the field."""

from __future__ import annotations

from typing import Annotated, ClassVar

from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.assistant_choice import ConfigModel
from voicedock.api.models.base import Body, RecordReply, Reply
from voicedock.api.models.calls import OldestFirstPageQuery, Pagination
from voicedock.api.models.field_types import AssistantId, Time
from voicedock.api.models.operations import Schema, operation, owned_paths
from voicedock.api.models.record_versions import VersionNumber
from voicedock.domain.rehearsal import Name, RunStatus, Scenario, ScenarioResult, Scenarios
from voicedock.domain.rehearsal import Suite as SuiteRecord
from voicedock.domain.rehearsal import SuiteRun as SuiteRunRecord

SUITE_ASSISTANT = Meta(
    description="The assistant the scenarios test unless a run names another (POST "
    "/test-suites/{id}/runs): 404 Assistant not found when a run uses it and it is gone."
)


class TestSuiteCreate(Body, kw_only=True):
    """A suite: its name (for people), its scenarios, the assistant they test."""

    __test__: ClassVar[bool] = False

    name: Name
    scenarios: Scenarios
    assistant_id: Annotated[AssistantId, SUITE_ASSISTANT] | None = None


class TestSuiteUpdate(Body, kw_only=True):
    """The fields sent replace the suite's (null: no assistant of its own). Runs already
    asked for keep the scenarios they started with."""

    __test__: ClassVar[bool] = False

    name: Name | UnsetType = UNSET
    scenarios: Scenarios | UnsetType = UNSET
    assistant_id: Annotated[AssistantId, SUITE_ASSISTANT] | UnsetType | None = UNSET


class TestSuite(RecordReply[SuiteRecord], kw_only=True):
    __test__: ClassVar[bool] = False

    id: str
    name: str
    assistant_id: str | None = None
    scenarios: list[Scenario]
    created_at: Time
    updated_at: Time


class TestSuiteList(Reply, kw_only=True):
    __test__: ClassVar[bool] = False

    test_suites: list[TestSuite]
    pagination: Pagination
    next_cursor: str | None = None


class TestSuiteListQuery(OldestFirstPageQuery, kw_only=True):
    """``GET /test-suites``'s query: oldest first."""

    __test__: ClassVar[bool] = False


class TestRunRequest(Body, kw_only=True):
    """Which assistant the run tests: the suite's (nothing sent), another saved one
    (``assistant_id``), a version of either (``assistant_version``: a draft before it is
    published, an earlier one) or a configuration not saved (``assistant``), not both."""

    __test__: ClassVar[bool] = False
    SCHEMA: ClassVar[Schema] = {
        "allOf": [
            {"not": {"required": ["assistant_id", "assistant"]}},
            {"not": {"required": ["assistant_version", "assistant"]}},
        ]
    }

    assistant_id: AssistantId | UnsetType = UNSET
    assistant_version: (
        Annotated[
            VersionNumber,
            Meta(
                description="A version of the assistant tested (GET /assistants/{id}/versions): "
                "a draft's, before it is published (POST /assistants/{id}/publish).",
            ),
        ]
        | UnsetType
    ) = UNSET
    assistant: ConfigModel | UnsetType = UNSET


class TestRunAccepted(Reply, kw_only=True):
    """The run, asked for: its scenarios are called in the background (``GET
    /test-runs/{id}``)."""

    __test__: ClassVar[bool] = False

    id: str
    suite_id: str
    status: RunStatus


class TestRun(RecordReply[SuiteRunRecord], kw_only=True):
    """A run: ``queued``, ``running``, then ``passed`` (every scenario passed), ``failed``
    (one did not: its ``reason`` names the first failed expectation) or ``error`` (the run
    could not be carried out: ``error`` says why)."""

    __test__: ClassVar[bool] = False

    id: str
    suite_id: str
    status: RunStatus
    assistant_id: str | None = None
    assistant_version: int | None = None
    results: list[ScenarioResult]
    error: str | None = None
    created_at: Time
    started_at: Time = None
    ended_at: Time = None


PATHS: dict[str, Schema] = {
    **owned_paths(
        "/test-suites",
        a_record="a test suite",
        reply=TestSuite,
        listing=TestSuiteList,
        query=TestSuiteListQuery,
        create=("Store a test suite (simulated callers and what each expects)", TestSuiteCreate),
        update=("Update a test suite", TestSuiteUpdate),
        delete="Delete a test suite and its runs",
        names_records=True,
    ),
    "/test-suites/{id}/runs": {
        "post": operation(
            "Run a test suite: each scenario a test call through the PBX",
            ("202", TestRunAccepted),
            body=TestRunRequest,
            errors="400 401 403 404 413 422 429",
        ),
    },
    "/test-runs/{id}": {
        "get": operation(
            "Get a test run (its scenarios' verdicts)",
            ("200", TestRun),
            errors="401 404",
        ),
    },
}
MODELS = (
    TestSuiteCreate,
    TestSuiteUpdate,
    TestSuite,
    TestSuiteList,
    TestSuiteListQuery,
    TestRunRequest,
    TestRunAccepted,
    TestRun,
)
