"""Schemathesis tests every documented operation of a real app (127.0.0.1, port 0, SQLite,
FakePbx) with every check over its four phases (examples, coverage, fuzzing, stateful through
the document's links): no server error, every status and body as documented, every valid
request accepted (or refused by a rule the schema cannot state, by its title) and every invalid
one refused. Settings: tests/api/schemathesis.toml; our own checks: tests/api/fuzz_checks.py."""

from __future__ import annotations

import asyncio
import ctypes.util
import importlib.util
import json
import os
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.schemathesis_process import GLIBC_TUNABLES, process_environment
from e2e.conftest import start_app
from fakes.pbx import FakePbx
from fakes.world import ACME, make_settings
from voicedock.api.api_keys import issue_api_key
from voicedock.api.models.document import openapi_json
from voicedock.errors import PbxError
from voicedock.pbx.base import OriginateRequest

pytestmark = pytest.mark.unit

# Per operation, in the fuzzing and stateful phases (coverage enumerates its cases whatever
# this says: some 18,000 in the other half alone, docs/testing.md). A larger budget once,
# before a release (docs/testing.md): VOICEDOCK_FUZZ_EXAMPLES=200; the bounds grow with it.
MAX_EXAMPLES = int(os.environ.get("VOICEDOCK_FUZZ_EXAMPLES", "15"))
# schemathesis's own bound: at the default budget a half took 2-3.5 min on a shared 2-core VM.
BOUND_S = 300 * max(1, MAX_EXAMPLES // 15)
CONFIG = Path(__file__).with_name("schemathesis.toml")
CHECKS = Path(__file__).with_name("fuzz_checks.py")  # our own checks, beside the built-in ones
PHASES = ("examples", "coverage", "fuzzing", "stateful")


# schemathesis, run by this interpreter, in a process set up to spend less on the same cases
# and checks (its garbage collector, its HTTP client, its allocator: schemathesis_process.py).
PROCESS = Path(__file__).with_name("schemathesis_process.py")


def _schemathesis() -> list[str]:
    if importlib.util.find_spec("schemathesis") is None:
        pytest.skip("schemathesis is not installed")
    return [sys.executable, "-P", str(PROCESS)]  # -P: tests/api/ stays off its sys.path


# The operations in two halves of about the same work, each run by schemathesis of its own, so
# that the suite's two workers share them (a class's tests stay on one worker): each half holds
# about as many of the operations whose bodies hold a whole assistant configuration, which take
# most of the time (schemathesis.toml). The stateful phase follows the document's links within
# each half: an assistant made is called, put in a squad, tested; a template made is read.
CALLS_AND_ASSISTANTS = "calls|assistants|squads|test-suites|test-runs"
CALLS_HALF = f"^/({CALLS_AND_ASSISTANTS})(/|$)"
OTHER_HALF = f"^/(?!({CALLS_AND_ASSISTANTS})(/|$))"


class RefusingPbx(FakePbx):
    """A PBX that refuses every call. The campaigns the fuzzing creates (a thousand or more)
    then settle their contacts as they are dialed; on a FakePbx, which answers no call, each
    call stays connecting at its caller number's limit, and the dialer would go over every
    waiting campaign five times a second until the run ends (most of the server's time)."""

    async def originate(self, request: OriginateRequest) -> None:
        raise PbxError("the fuzzing's PBX places no call")


class TestCallsAssistantsSquadsAndTestSuites:
    @pytest.mark.timeout(BOUND_S + 60)  # schemathesis has its own bound below
    async def test_keep_their_documented_contract(self, tmp_path: Path) -> None:
        await keeps_its_documented_contract(tmp_path, CALLS_HALF, FakePbx())


class TestTheOrganizationsOtherResources:
    @pytest.mark.timeout(BOUND_S + 60)  # schemathesis has its own bound below
    async def test_keep_their_documented_contract(self, tmp_path: Path) -> None:
        await keeps_its_documented_contract(tmp_path, OTHER_HALF, RefusingPbx())


def test_the_two_halves_hold_every_operation_once() -> None:
    calls = re.compile(CALLS_HALF)
    other = re.compile(OTHER_HALF)
    for path in ("/calls/outbound", "/assistants/{id}", "/test-runs/{id}", "/squads"):
        assert calls.search(path), path
        assert not other.search(path), path
    others = ("/do-not-call/import", "/agents", "/campaigns", "/callsx", "/openapi.json")
    for path in others:
        assert other.search(path), path
        assert not calls.search(path), path


def _refs(node: object) -> Iterator[str]:
    """The component names ``node`` refers to (``$ref``), at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_body_holding_an_assistant_configuration_has_a_positive_coverage_phase() -> None:
    """Enumerated negatively, a whole assistant configuration is tens of thousands of cases
    (a draft's body, left out of the list, made the calls half 3x slower): each operation
    whose body reaches one is in schemathesis.toml's positive-only list."""
    document = json.loads(openapi_json())
    schemas = document["components"]["schemas"]
    configurations = {
        name for name, s in schemas.items() if "llm_config" in s.get("properties", {})
    }
    assert {"AssistantConfig", "AssistantOverride", "AssistantUpdate"} <= configurations
    reaching = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            seen: set[str] = set()
            todo = list(_refs(operation.get("requestBody", {})))
            while todo:
                name = todo.pop()
                if name not in seen:
                    seen.add(name)
                    todo.extend(_refs(schemas[name]))
            if seen & configurations:
                reaching.add(f"{method.upper()} {path}")
    positive = {
        name
        for entry in tomllib.loads(CONFIG.read_text())["operations"]
        if entry.get("phases", {}).get("coverage", {}).get("generation", {}).get("mode")
        == "positive"
        for name in entry["include-name"]
    }
    assert "POST /assistants/{id}/drafts" in reaching
    assert reaching <= positive, sorted(reaching - positive)


def test_the_schemathesis_process_keeps_the_environment_with_its_allocator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = {"PATH": "/usr/bin", "LD_PRELOAD": "libother.so", "NO_COLOR": "1"}
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so.2")
    env = process_environment(given)
    assert env == {
        **given,
        "LD_PRELOAD": "libjemalloc.so.2 libother.so",
        "MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1",
    }
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    env = process_environment(given)
    assert env == {**given, "GLIBC_TUNABLES": GLIBC_TUNABLES}
    assert "glibc.malloc.mxfast=0" in GLIBC_TUNABLES


async def keeps_its_documented_contract(tmp_path: Path, paths: str, pbx: FakePbx) -> None:
    """schemathesis over the operations whose paths match ``paths``, every phase, the app
    on ``pbx``."""
    client, service = await start_app(make_settings(f"sqlite:///{tmp_path / 'fuzz.db'}"), pbx)
    report = tmp_path / "report.json"
    try:
        key, _ = await issue_api_key(service.store, ACME)
        url = f"http://127.0.0.1:{client.port}/openapi.json"
        proc = await asyncio.create_subprocess_exec(
            *_schemathesis(), "--config-file", str(CONFIG), "run", url,
            "--checks", "all",
            "--phases", ",".join(PHASES),
            # Excluded: a live call's event stream only ends with the call, so every request
            # for one waits out --request-timeout. Its own tests: test_call_events_api.py.
            "--include-path-regex", paths,
            "--exclude-path-regex", "/events$",
            "--max-examples", str(MAX_EXAMPLES),
            "--header", f"Authorization: Bearer {key}",
            "--seed", "20251213",
            "--generation-database", "none",
            "--workers", "1",  # one order of requests: the same run every time
            "--request-timeout", "10",
            "--continue-on-failure",
            "--report", "json", "--report-json-path", str(report),
            "--no-color",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=process_environment(
                {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": str(CHECKS)}
            ),
        )  # fmt: skip
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), timeout=BOUND_S)
        except BaseException:  # its bound passed, or the test was stopped: it ends with the test
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
    finally:
        await client.close()
    text = output.decode(errors="replace")
    assert report.exists(), text[-6000:]
    run = json.loads(report.read_text())
    assert run["failures"] == [], text[-12000:]
    assert run["errors"] == [], text[-6000:]
    assert run["test_cases"]["with_failures"] == 0, text[-12000:]
    assert {name: run["phases"][name]["status"] for name in PHASES} == dict.fromkeys(
        PHASES, "success"
    ), text[-6000:]
    assert proc.returncode == 0, text[-6000:]
