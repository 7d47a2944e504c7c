"""``/test-suites`` (an organization's simulated callers and what each expects: create, list by
cursor, get, patch, delete), ``POST /test-suites/{id}/runs`` (a run, ``202``) and ``GET
/test-runs/{id}``. The runs are ``calls/rehearsal/runs.py``'s."""

from __future__ import annotations

import dataclasses
import uuid

from aiohttp import web
from msgspec import UnsetType

from voicedock.api.body import read_json
from voicedock.api.models.base import parse, reply, sent
from voicedock.api.models.test_suites import TestRun as TestRunReply
from voicedock.api.models.test_suites import (
    TestRunAccepted,
    TestRunRequest,
    TestSuiteCreate,
    TestSuiteListQuery,
    TestSuiteUpdate,
)
from voicedock.api.models.test_suites import TestSuite as TestSuiteReply
from voicedock.api.resources import Caller, Resource, caller_of, mount, oldest_first
from voicedock.calls.assistants.config import check_assistant_choice
from voicedock.calls.assistants.resolve import check_saved_assistant
from voicedock.calls.rehearsal.suites import check_scenarios
from voicedock.domain.records import utcnow
from voicedock.domain.rehearsal import Suite, SuiteRun
from voicedock.errors import BadRequest

routes = web.RouteTableDef()

MAX_SUITES_PER_ORGANIZATION = 200


def _parse_new(caller: Caller, body: object) -> Suite:
    new = parse(body, TestSuiteCreate)
    check_scenarios(new.scenarios)
    return Suite(
        id=str(uuid.uuid4()),
        organization_id=caller.organization_id,
        name=new.name,
        scenarios=new.scenarios,
        assistant_id=new.assistant_id,
    )


def _parse_update(_caller: Caller, suite: Suite, body: object) -> Suite:
    given = parse(body, TestSuiteUpdate)
    if not isinstance(given.scenarios, UnsetType):
        check_scenarios(given.scenarios)
    return dataclasses.replace(
        suite,
        name=suite.name if isinstance(given.name, UnsetType) else given.name,
        scenarios=suite.scenarios if isinstance(given.scenarios, UnsetType) else given.scenarios,
        assistant_id=(
            suite.assistant_id if isinstance(given.assistant_id, UnsetType) else given.assistant_id
        ),
        updated_at=utcnow(),
    )


async def _check(caller: Caller, suite: Suite) -> None:
    """The saved assistant the suite names is the organization's (422)."""
    await check_saved_assistant(
        caller.store, caller.organization_id, suite.assistant_id, "assistant_id"
    )


TEST_SUITES: Resource[Suite] = oldest_first(
    path="/test-suites",
    noun="test suite",
    serialize=TestSuiteReply.of,
    lookup=lambda c, suite_id: c.store.get_suite(c.organization_id, suite_id),
    page=lambda c, query: c.store.list_suites(query),
    query=TestSuiteListQuery,
    parse_new=_parse_new,
    parse_update=_parse_update,
    insert=lambda tx, s, _by: tx.insert_suite(s),
    update=lambda tx, s, _by: tx.update_suite(s),
    delete=lambda tx, s: tx.delete_suite(s.organization_id, s.id),
    most=MAX_SUITES_PER_ORGANIZATION,
    check=_check,
)
TEST_RUNS: Resource[SuiteRun] = Resource(
    path="/test-runs",
    noun="test run",
    lookup=lambda c, run_id: c.store.get_suite_run(c.organization_id, run_id),
    serialize=TestRunReply.of,
)
RESOURCES = (TEST_SUITES, TEST_RUNS)
mount(routes, *RESOURCES)


@routes.post("/test-suites/{id}/runs")
async def run_suite(request: web.Request) -> web.Response:
    """A run of the suite against its assistant, another (``assistant_id``), a version of it
    (``assistant_version``, a draft's) or a configuration (``assistant``): ``202`` with the
    run's id, its scenarios called in the background."""
    caller = caller_of(request)
    suite = await TEST_SUITES.fetch(request)
    body = await read_json(request, caller.service.settings.server.max_body_bytes)
    asked = parse(body, TestRunRequest)
    assistant_id = None if isinstance(asked.assistant_id, UnsetType) else asked.assistant_id
    transient = None if isinstance(asked.assistant, UnsetType) else sent(asked.assistant)
    version = None if isinstance(asked.assistant_version, UnsetType) else asked.assistant_version
    if version is not None and transient is not None:
        raise BadRequest(
            "send assistant_version (a version of a saved assistant) or assistant, not both"
        )
    if assistant_id is not None or transient is not None:
        assistant, _ = check_assistant_choice(assistant_id, transient, None)
    else:
        assistant = None
    run = await caller.service.rehearsals.ask(
        caller.organization_id,
        suite,
        assistant_id=assistant_id,
        assistant=assistant,
        assistant_version=version,
    )
    accepted = TestRunAccepted(id=run.id, suite_id=suite.id, status=run.status)
    response = reply(accepted, 202)
    response.headers["Location"] = f"/test-runs/{run.id}"
    return response


__all__ = ["RESOURCES", "TEST_RUNS", "TEST_SUITES", "routes"]
