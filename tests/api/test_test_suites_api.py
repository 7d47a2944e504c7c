"""Test suites over REST: stored per organization (another's is a 404), paged by cursor,
refused naming the field (schema and the rules no schema states), sized within the tenant
bounds; a run is asked for with 202 and read back at /test-runs/{id}; without a PBX that
carries media it ends ``error`` saying so."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.conftest import Api, serving
from api.contract import conforms
from fakes.world import ACME, GLOBEX, GLOBEX_ASSISTANT_ID, SUPPORT_ID, make_settings, org_id
from voicedock.calls.rehearsal.runs import NO_TEST_CALLS, Rehearsals
from voicedock.calls.rehearsal.test_calls import CallSetup, Observed, SimulatedCalls
from voicedock.cli import main
from voicedock.domain.records import Call, CallStatus, Direction
from voicedock.domain.rehearsal import MAX_SAY_CHARS, MAX_SCENARIOS
from webhooks.receiver import Receiver, wait_until

pytestmark = pytest.mark.unit

HOURS = {
    "name": "asks the opening hours",
    "steps": [{"type": "say", "text": "When are you open?"}, {"type": "press", "keys": "1234#"}],
    "expectations": [
        {"type": "said", "contains": "nine to five"},
        {"type": "tool-called", "name": "lookup", "arguments": {"day": "monday"}},
    ],
    "tool_mocks": [{"name": "lookup", "result": "open"}],
}
SUITE = {"name": "Front desk", "assistant_id": SUPPORT_ID, "scenarios": [HOURS]}


async def _create(api: Api, body: object = SUITE) -> str:
    resp = await api.client.post("/test-suites", json=body, headers=api.auth())
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def test_a_suite_is_stored_read_updated_and_deleted_per_organization(api: Api) -> None:
    h = api.auth()
    resp = await api.client.post("/test-suites", json=SUITE, headers=h)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    conforms(created, "TestSuite")
    assert created["scenarios"][0]["steps"][0] == {
        "type": "say", "text": "When are you open?", "voice": None, "when": "after-assistant",
        "after_ms": 0,
    }  # fmt: skip
    suite_id = created["id"]
    got = await (await api.client.get(f"/test-suites/{suite_id}", headers=h)).json()
    assert got == created

    theirs = await api.client.get(f"/test-suites/{suite_id}", headers=api.auth(api.globex_key))
    assert theirs.status == 404
    assert (await theirs.json()) == {
        "error": "Test suite not found",
        "message": "no test suite with this id",
    }
    listed = await api.client.get("/test-suites", headers=api.auth(api.globex_key))
    assert (await listed.json())["test_suites"] == []

    patched = await api.client.patch(
        f"/test-suites/{suite_id}", json={"name": "Desk", "assistant_id": None}, headers=h
    )
    assert patched.status == 200, await patched.text()
    body = await patched.json()
    assert (body["name"], body["assistant_id"], body["scenarios"]) == (
        "Desk", None, created["scenarios"],
    )  # fmt: skip

    deleted = await api.client.delete(f"/test-suites/{suite_id}", headers=h)
    assert deleted.status == 204
    gone = await api.client.get(f"/test-suites/{suite_id}", headers=h)
    assert gone.status == 404


async def test_suites_are_paged_by_cursor(api: Api) -> None:
    ids = [await _create(api, {**SUITE, "name": f"suite {n}"}) for n in range(5)]
    seen: list[str] = []
    cursor = ""
    for _ in range(3):
        resp = await api.client.get(
            "/test-suites", params={"limit": "2", "cursor": cursor}, headers=api.auth()
        )
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        conforms(page, "TestSuiteList")
        assert page["pagination"]["total"] == 5
        seen += [s["id"] for s in page["test_suites"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


@pytest.mark.parametrize(
    ("scenario", "named"),
    [
        ({**HOURS, "steps": [{"type": "say", "text": "x" * (MAX_SAY_CHARS + 1)}]}, "steps[0].text"),
        ({**HOURS, "steps": [{"type": "silence", "seconds": 31}]}, "steps[0].seconds"),
        ({**HOURS, "steps": [{"type": "press", "keys": "12x"}]}, "steps[0].keys"),
        ({**HOURS, "steps": [{"type": "dance"}]}, "steps[0]"),
        ({**HOURS, "steps": []}, "scenarios[0].steps"),
        (
            {**HOURS, "expectations": [{"type": "said", "contains": "a", "regex": "b"}]},
            "scenarios[0].expectations[0]",
        ),
        (
            {**HOURS, "expectations": [{"type": "said", "regex": r"(\w+)\1"}]},  # RE2 refuses it
            "scenarios[0].expectations[0].regex",
        ),
        (
            {**HOURS, "tool_mocks": [{"name": "a", "result": "1"}, {"name": "a", "result": "2"}]},
            "scenarios[0].tool_mocks",
        ),
    ],
)
async def test_a_scenario_out_of_bounds_is_refused_naming_the_field(
    api: Api, scenario: dict[str, object], named: str
) -> None:
    resp = await api.client.post(
        "/test-suites", json={**SUITE, "scenarios": [scenario]}, headers=api.auth()
    )
    assert resp.status == 400, await resp.text()
    assert named in (await resp.json())["message"]


async def test_a_suite_holds_at_most_its_bound_of_scenarios(api: Api) -> None:
    many = [{**HOURS, "name": f"s{n}"} for n in range(MAX_SCENARIOS + 1)]
    resp = await api.client.post(
        "/test-suites", json={**SUITE, "scenarios": many}, headers=api.auth()
    )
    assert resp.status == 400
    assert "scenarios" in (await resp.json())["message"]
    same = await api.client.post(
        "/test-suites", json={**SUITE, "scenarios": [HOURS, HOURS]}, headers=api.auth()
    )
    assert same.status == 400
    assert "scenarios[1].name" in (await same.json())["message"]


async def test_a_suite_names_only_its_organizations_assistant(api: Api) -> None:
    """Another organization's assistant is refused as a squad's member is (422, the field)."""
    theirs = {**SUITE, "assistant_id": GLOBEX_ASSISTANT_ID}
    resp = await api.client.post("/test-suites", json=theirs, headers=api.auth())
    assert resp.status == 422, await resp.text()
    body = await resp.json()
    assert body["error"] == "Unknown assistant"
    assert body["message"] == "assistant_id: no assistant with this id"
    listed = await (await api.client.get("/test-suites", headers=api.auth())).json()
    assert listed["test_suites"] == []
    suite_id = await _create(api)
    path = f"/test-suites/{suite_id}"
    patched = await api.client.patch(
        path, json={"assistant_id": GLOBEX_ASSISTANT_ID}, headers=api.auth()
    )
    assert patched.status == 422, await patched.text()
    assert (await patched.json())["message"] == "assistant_id: no assistant with this id"
    kept = await (await api.client.get(path, headers=api.auth())).json()
    assert kept["assistant_id"] == SUPPORT_ID


async def test_a_run_is_accepted_and_read_back(api: Api) -> None:
    suite_id = await _create(api)
    resp = await api.client.post(f"/test-suites/{suite_id}/runs", json={}, headers=api.auth())
    assert resp.status == 202, await resp.text()
    accepted = await resp.json()
    conforms(accepted, "TestRunAccepted")
    assert resp.headers["Location"] == f"/test-runs/{accepted['id']}"
    run: dict[str, object] = {}
    for _ in range(100):
        got = await api.client.get(f"/test-runs/{accepted['id']}", headers=api.auth())
        assert got.status == 200
        run = await got.json()
        if run["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.05)
    conforms(run, "TestRun")
    # The fake PBX carries no media: the run says why it could not call.
    assert (run["status"], run["error"], run["suite_id"]) == ("error", NO_TEST_CALLS, suite_id)

    other = await api.client.get(f"/test-runs/{accepted['id']}", headers=api.auth(api.globex_key))
    assert other.status == 404
    assert (await other.json())["error"] == "Test run not found"


async def test_a_run_names_its_assistant(api: Api) -> None:
    suite_id = await _create(api, {**SUITE, "assistant_id": None})
    path = f"/test-suites/{suite_id}/runs"
    none = await api.client.post(path, json={}, headers=api.auth())
    assert none.status == 400
    assert "assistant_id or assistant" in (await none.json())["message"]
    gone = await api.client.post(path, json={"assistant_id": "nobody"}, headers=api.auth())
    assert gone.status == 404
    assert (await gone.json())["error"] == "Assistant not found"
    both = await api.client.post(
        path, json={"assistant_id": SUPPORT_ID, "assistant": {}}, headers=api.auth()
    )
    assert both.status == 400
    draft = await api.client.post(
        path, json={"assistant": {"first_message": "Hello from the draft."}}, headers=api.auth()
    )
    assert draft.status == 202, await draft.text()
    missing = await api.client.post("/test-suites/nope/runs", json={}, headers=api.auth())
    assert missing.status == 404
    assert (await missing.json())["error"] == "Test suite not found"


async def test_test_calls_are_listed_and_counted_only_when_asked_for(api: Api) -> None:
    moment = datetime.now(UTC)
    for call_id, run_id in (("real-call", None), ("test-call", "run-1")):
        call = Call(
            id=call_id, organization_id=org_id(ACME), direction=Direction.INBOUND,
            status=CallStatus.ENDED, caller_phone=None, assistant_phone=None,
            test_run_id=run_id, created_at=moment, updated_at=moment,
        )  # fmt: skip
        async with api.service.store.transaction() as tx:
            await tx.insert_call(call)
    h = api.auth()
    listed = await (await api.client.get("/calls", headers=h)).json()
    assert [c["id"] for c in listed["calls"]] == ["real-call"]
    everything = await api.client.get("/calls", params={"include_tests": "true"}, headers=h)
    assert {c["id"] for c in (await everything.json())["calls"]} == {"real-call", "test-call"}
    bad = await api.client.get("/calls", params={"include_tests": "yes"}, headers=h)
    assert bad.status == 400
    assert "include_tests" in (await bad.json())["message"]

    usage = await (await api.client.get("/usage", headers=h)).json()
    assert usage["totals"]["calls"] == 1
    usage = await api.client.get("/usage", params={"include_tests": "true"}, headers=h)
    assert (await usage.json())["totals"]["calls"] == 2


async def test_a_draft_assistant_is_checked_as_a_call_s_would_be(api: Api) -> None:
    suite_id = await _create(api)
    entry = {"provider": "rule_based", "messages": [None]}
    resp = await api.client.post(
        f"/test-suites/{suite_id}/runs",
        json={"assistant": {"llm_config": {"fallback_plan": [entry]}}},
        headers=api.auth(),
    )
    assert resp.status == 400, await resp.text()
    assert "llm_config.fallback_plan[0].messages[0]" in (await resp.json())["message"]


async def test_the_cli_runs_a_suite_file_and_writes_a_junit_report(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``voicedock test run``: the suite stored under its name (replaced on the next run),
    run against the named assistant, each scenario in the JUnit report; not every scenario
    passed (the fake PBX places no test calls), so it exits 1."""
    suite = {"name": "CI suite", "scenarios": [HOURS, {**HOURS, "name": "second"}]}
    file = tmp_path / "suite.json"
    file.write_text(json.dumps(suite))
    junit = tmp_path / "out.xml"
    monkeypatch.setenv("VOICEDOCK_API_KEY", api.acme_key)
    url = f"http://127.0.0.1:{api.client.port}"
    argv = ["test", "run", str(file), "--assistant", "Support", "--url", url, "--junit", str(junit)]
    for _ in range(2):
        assert await asyncio.to_thread(main, argv) == 1
    listed = await (await api.client.get("/test-suites", headers=api.auth())).json()
    assert [s["name"] for s in listed["test_suites"]] == ["CI suite"]
    report = ET.fromstring(junit.read_bytes())
    assert report.get("tests") == "2"
    cases = report.findall("testcase")
    assert [c.get("name") for c in cases][:2] == ["asks the opening hours", "second"]
    error = cases[0].find("error")
    assert error is not None
    assert error.get("message") == NO_TEST_CALLS

    wrong = ["test", "run", str(file), "--assistant", "Nobody", "--url", url]
    assert await asyncio.to_thread(main, wrong) == 1


async def test_a_run_s_end_is_a_test_run_completed_webhook(database_url: str) -> None:
    settings = make_settings(database_url)
    settings.egress.allow_loopback = True  # the test's webhook receiver
    settings.webhooks.poll_interval_ms = 50
    receiver = Receiver(secret="")
    await receiver.start()
    try:
        async with serving(settings) as api:
            created = await api.client.post(
                "/webhooks",
                json={"url": receiver.url, "event_types": ["test-run.completed"]},
                headers=api.auth(),
            )
            assert created.status == 201, await created.text()
            receiver.secret = (await created.json())["secret"]
            suite_id = await _create(api)
            resp = await api.client.post(
                f"/test-suites/{suite_id}/runs", json={}, headers=api.auth()
            )
            run_id = (await resp.json())["id"]
            await wait_until(lambda: len(receiver.accepted) == 1, timeout=10)
    finally:
        await receiver.stop()
    (event,) = [json.loads(r.body) for r in receiver.requests]
    assert event["type"] == "test-run.completed"
    assert event["test_run_id"] == run_id
    assert event["data"] == {
        "suite_id": suite_id, "status": "error", "assistant_id": SUPPORT_ID,
        "scenarios": 1, "passed": 0, "failed": 0, "errors": 1,
    }  # fmt: skip


class HeldCalls:
    """Test calls held until ``go`` is set, each noted (its organization) as it begins."""

    def __init__(self) -> None:
        self.began: list[str] = []
        self.go = asyncio.Event()

    async def call(self, setup: CallSetup) -> Observed:
        self.began.append(setup.organization_id)
        await self.go.wait()
        return Observed(call_id=f"call-{setup.scenario.name}")


@asynccontextmanager
async def placed_by(api: Api, calls: SimulatedCalls) -> AsyncIterator[None]:
    """The node's test calls placed by ``calls`` meanwhile (the fake PBX carries no media)."""
    service = api.service
    before = service.rehearsals
    service.rehearsals = Rehearsals(service.store, service.settings, calls)
    await service.rehearsals.start()
    try:
        yield
    finally:
        await service.rehearsals.aclose()
        service.rehearsals = before


@asynccontextmanager
async def held_calls(api: Api) -> AsyncIterator[HeldCalls]:
    """The node's test calls placed by a ``HeldCalls``."""
    calls = HeldCalls()
    async with placed_by(api, calls):
        try:
            yield calls
        finally:
            calls.go.set()


async def _ask_run(api: Api, suite_id: str, key: str | None = None) -> str:
    resp = await api.client.post(f"/test-suites/{suite_id}/runs", json={}, headers=api.auth(key))
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["id"])


async def _status(api: Api, run_id: str, key: str | None = None) -> str:
    got = await api.client.get(f"/test-runs/{run_id}", headers=api.auth(key))
    assert got.status == 200, await got.text()
    return str((await got.json())["status"])


async def _run_reaches(
    api: Api, run_id: str, statuses: tuple[str, ...], key: str | None = None
) -> None:
    """Until the run's status is one of ``statuses``."""
    for _ in range(200):
        if await _status(api, run_id, key) in statuses:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never {statuses}")


async def _run_ended(api: Api, run_id: str, key: str | None = None) -> None:
    await _run_reaches(api, run_id, ("passed", "failed", "error"), key)


async def _globex_suite(api: Api) -> str:
    """A suite of Globex's, of its own assistant."""
    resp = await api.client.post(
        "/test-suites",
        json={"name": "Globex desk", "assistant_id": GLOBEX_ASSISTANT_ID, "scenarios": [HOURS]},
        headers=api.auth(api.globex_key),
    )
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def test_one_organization_s_queued_runs_do_not_hold_another_s_behind_them(
    api: Api,
) -> None:
    """The node's test-call slots go to the organizations in turn: with one slot, Acme's three
    runs of five scenarios each take it first, and Globex's one run comes next but one, not
    after all fifteen."""
    api.service.settings.rehearsal.max_concurrent = 1
    scenarios = [{**HOURS, "name": f"s{n}"} for n in range(5)]
    acme_suite = await _create(api, {**SUITE, "scenarios": scenarios})
    globex_suite = await _globex_suite(api)
    async with held_calls(api) as calls:
        acme_runs = [await _ask_run(api, acme_suite) for _ in range(3)]
        await wait_until(lambda: len(calls.began) == 1, timeout=5)
        globex_run = await _ask_run(api, globex_suite, api.globex_key)
        for run_id in acme_runs:
            await _run_reaches(api, run_id, ("running",))
        await _run_reaches(api, globex_run, ("running",), api.globex_key)
        await asyncio.sleep(0.2)  # every scenario waits for the slot
        assert calls.began == [org_id(ACME)]
        calls.go.set()
        for run_id in acme_runs:
            await _run_ended(api, run_id)
        await _run_ended(api, globex_run, api.globex_key)
    assert len(calls.began) == 16
    assert calls.began.index(org_id(GLOBEX)) <= 2, calls.began


async def test_runs_at_once_are_bounded_across_the_nodes_sharing_the_database(
    database_url: str,
) -> None:
    """Acme's runs held on one node count on another sharing its database: a run asked for
    there beyond ``max_runs_per_organization`` is a 429, and Globex's is not (SQLite serves
    one node: two stores on one file are ``tests/calls/test_rehearsal_runs.py``'s)."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite serves one node")
    nodes = []
    for node_id in ("node-a", "node-b"):
        settings = make_settings(database_url)
        settings.node.id = node_id
        settings.rehearsal.max_runs_per_organization = 2
        nodes.append(settings)
    async with serving(nodes[0]) as first, serving(nodes[1]) as second:
        suite_id = await _create(first)
        async with held_calls(first) as calls:
            for _ in range(2):
                await _ask_run(first, suite_id)
            await wait_until(lambda: len(calls.began) == 2, timeout=5)
            more = await second.client.post(
                f"/test-suites/{suite_id}/runs", json={}, headers=second.auth()
            )
            assert more.status == 429, await more.text()
            assert "at most 2 test runs at once" in (await more.json())["message"]
            theirs = await _ask_run(second, await _globex_suite(second), second.globex_key)
            await _run_ended(second, theirs, second.globex_key)
        # Once Acme's runs ended, it may ask again, on either node.
        await _run_ended(second, await _ask_run(second, suite_id))


async def test_finished_runs_beyond_the_operator_s_bound_are_deleted_oldest_first(
    api: Api,
) -> None:
    api.service.settings.rehearsal.max_stored_runs_per_organization = 2
    suite_id = await _create(api)
    theirs = await _ask_run(api, await _globex_suite(api), api.globex_key)
    await _run_ended(api, theirs, api.globex_key)
    runs = []
    for _ in range(4):
        runs.append(await _ask_run(api, suite_id))
        await _run_ended(api, runs[-1])
    kept = [
        (await api.client.get(f"/test-runs/{run_id}", headers=api.auth())).status for run_id in runs
    ]
    assert kept == [404, 404, 200, 200]
    # Another organization's runs are its own to keep.
    assert await _status(api, theirs, api.globex_key) == "error"
