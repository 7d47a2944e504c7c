"""``voicedock test run FILE --assistant NAME``: a test suite run through a node's REST API, as
an organization's CI runs it (docs/testing-assistants.md).

The suite (``{name, scenarios}``, JSON) is stored under its name (created, or its scenarios
replaced when the organization has a suite of that name), run against the named assistant, and
awaited; the answer is the run as ``GET /test-runs/{id}`` gives it. A JUnit XML report lists
each scenario (a failed one with its reason). Everything is read by the API's own models."""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import aiohttp
import msgspec

from voicedock.api.models.test_suites import TestRun, TestRunAccepted, TestSuite, TestSuiteList
from voicedock.domain.rehearsal import Outcome
from voicedock.errors import VoicedockError

POLL_S = 1.0


class _Named(msgspec.Struct):
    """An assistant of ``GET /assistants`` as read here: its id and name (the rest unread)."""

    id: str
    name: str


class _Assistants(msgspec.Struct):
    assistants: list[_Named]


class SuiteRunFailed(VoicedockError):
    """The run could not be asked for or awaited (the reason is for people)."""


class _Api:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url.rstrip("/")

    async def call(self, method: str, path: str, body: object = None) -> object:
        try:
            async with self._session.request(method, self._url + path, json=body) as resp:
                text = await resp.text()
        except aiohttp.ClientError as exc:
            raise SuiteRunFailed(f"{method} {path}: {exc}") from None
        if resp.status >= 400:
            raise SuiteRunFailed(f"{method} {path}: {resp.status} {text[:500]}")
        return json.loads(text) if text else None


async def _suite_named(api: _Api, name: str) -> TestSuite | None:
    cursor = ""
    while True:
        page = msgspec.convert(
            await api.call("GET", f"/test-suites?limit=100&cursor={cursor}"), TestSuiteList
        )
        found = next((suite for suite in page.test_suites if suite.name == name), None)
        if found is not None or page.next_cursor is None:
            return found
        cursor = page.next_cursor


def load_suite(file: Path) -> dict[str, object]:
    """The suite a file holds (JSON: ``{name, scenarios}``), checked by the API when stored."""
    try:
        suite = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise SuiteRunFailed(f"{file}: {exc}") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("name"), str):
        raise SuiteRunFailed(f"{file}: a suite is a JSON object with a name and scenarios")
    return suite


async def run_suite(
    url: str, key: str, suite: dict[str, object], assistant: str, within: float
) -> TestRun:
    """``suite`` stored under its name and run against the assistant named ``assistant``,
    awaited (at most ``within`` seconds)."""
    name = str(suite["name"])
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        api = _Api(session, url)
        assistants = msgspec.convert(await api.call("GET", "/assistants"), _Assistants)
        chosen = [a.id for a in assistants.assistants if a.name == assistant]
        if len(chosen) != 1:
            raise SuiteRunFailed(f"{len(chosen)} assistants are named {assistant!r}")
        stored = await _suite_named(api, name)
        if stored is None:
            answer = await api.call("POST", "/test-suites", suite)
        else:
            answer = await api.call("PATCH", f"/test-suites/{stored.id}", suite)
        suite_id = msgspec.convert(answer, TestSuite).id
        body = {"assistant_id": chosen[0]}
        accepted = msgspec.convert(
            await api.call("POST", f"/test-suites/{suite_id}/runs", body), TestRunAccepted
        )
        return await _awaited(api, accepted.id, within)


async def _awaited(api: _Api, run_id: str, within: float) -> TestRun:
    deadline = time.monotonic() + within
    while True:
        run = msgspec.convert(await api.call("GET", f"/test-runs/{run_id}"), TestRun)
        if run.status not in ("queued", "running"):
            return run
        if time.monotonic() > deadline:
            raise SuiteRunFailed(f"run {run_id} still {run.status} after {within:.0f} s")
        await asyncio.sleep(POLL_S)


def junit_report(suite: str, run: TestRun) -> bytes:
    """A JUnit XML report of ``run``: a test case per scenario."""
    outcomes = [result.outcome for result in run.results]
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(run.results)),
        failures=str(outcomes.count(Outcome.FAILED)),
        errors=str(outcomes.count(Outcome.ERROR) + (run.error is not None)),
    )
    for result in run.results:
        case = ET.SubElement(root, "testcase", classname=suite, name=result.name)
        if result.duration_ms is not None:
            case.set("time", f"{result.duration_ms / 1000:.3f}")
        if result.outcome is Outcome.FAILED:
            ET.SubElement(case, "failure", message=result.reason or "failed")
        elif result.outcome is Outcome.ERROR:
            ET.SubElement(case, "error", message=result.reason or "error")
    if run.error is not None:
        case = ET.SubElement(root, "testcase", classname=suite, name="run")
        ET.SubElement(case, "error", message=run.error)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


__all__ = ["SuiteRunFailed", "junit_report", "load_suite", "run_suite"]
