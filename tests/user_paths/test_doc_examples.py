"""Every request example of README.md, docs/*.md and the API seeds, sent as it is written to the
real service, checked the way a user would check it: on the lab Asterisk 22 and, where it places
a call, on the lab FreeSWITCH too (``CALL_COLUMNS``, ``PBX_NEUTRAL`` below).

The examples are read from the documents when this module is collected (``examples.py``; the
seeds' from their record, ``seed_examples.json``, which ``test_the_recorded_seed_examples_are_
the_seeds`` keeps equal to the seeds): editing one changes what is sent here, and one that no
scenario covers fails ``test_every_example_has_a_scenario``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from user_paths.backends import UserPathBackend
from user_paths.examples import (
    SEED_RECORD,
    Example,
    all_examples,
    markdown_sources,
    recorded_seed_examples,
    seed_examples_from_seeds,
    seed_sources,
    seeds_dir,
)
from user_paths.fixtures import BACKEND_MARKS, backend
from user_paths.scenarios import SCENARIOS, scenario_of

__all__ = ["backend"]  # the module-scoped service per PBX (fixtures.py)

EXAMPLES = all_examples()

# Examples that fail because of a known bug someone else is fixing: (backend, first source) →
# reason. strict: they turn into failures the moment the bug is fixed, so this list shrinks.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def _id(example: Example) -> str:
    kind = example.body.get("type") if isinstance(example.body, dict) else None
    return f"{example.id}:{kind}" if kind else example.id


# The PBXs every example that places a call runs on: the lab Asterisk 22 (chan_websocket), the
# lab FreeSWITCH, and the in-process fake off CI. Asterisk 22 over RTP and Asterisk 16.28 would
# send the same requests on another transport or version: what is particular to them (a call
# that talks, a recording, barge-in, transfers, an inbound call, keys) is checked on each in
# test_field_pbx.py, and their refusals, barge-in and echo in test_modes.py and test_echo.py.
CALL_COLUMNS = ("asterisk", "freeswitch", "freeswitch-fake")
# Scenarios whose request places no call, or places one only to read what the service made of
# it (a price, an analysis plan, an organization's default greeting): nothing there depends on
# the PBX, whose part (a call that talks) the call examples check on each. They run on the lab
# Asterisk 22 (and the fake off CI).
PBX_NEUTRAL = frozenset(
    {
        "list-resources",
        "create-webhook",
        "list-webhooks",
        "get-webhook",
        "delete-webhook",
        "provider-keys",
        "list-voices",
        "voice-preview",
        "usage",
        "billing",
        "get-organization",
        "patch-organization",
        "agents",
        "analysis-templates",
    }
)
NEUTRAL_COLUMNS = ("asterisk", "freeswitch-fake")


def _runs_on(name: str, example: Example) -> bool:
    neutral = scenario_of(example) in PBX_NEUTRAL
    return name in (NEUTRAL_COLUMNS if neutral else CALL_COLUMNS)


def _cases(name: str) -> list[Any]:
    """The examples that run on ``name``, with a strict xfail where a known bug makes the
    example fail."""
    cases = []
    for example in EXAMPLES:
        if not _runs_on(name, example):
            continue
        reason = KNOWN_BUGS.get((name, example.id))
        xfail = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        marks = BACKEND_MARKS[name] + xfail
        cases.append(pytest.param(name, example, marks=marks, id=f"{name}-{_id(example)}"))
    return cases


@pytest.mark.unit
def test_every_example_has_a_scenario() -> None:
    unmapped = [f"{e.id}: {e.method} {e.path} {e.body}" for e in EXAMPLES if not scenario_of(e)]
    assert not unmapped, "examples without a user-path scenario:\n" + "\n".join(unmapped)
    assert {scenario_of(e) for e in EXAMPLES} <= set(SCENARIOS)


@pytest.mark.unit
def test_the_documents_still_have_examples() -> None:
    """A parser that silently finds nothing would make the suite pass vacuously."""
    by_file: dict[str, int] = {}
    for example in EXAMPLES:
        for source in example.sources:
            name = source.rsplit(":", 1)[0]
            by_file[name] = by_file.get(name, 0) + 1
    assert by_file.get("README.md", 0) >= 5, by_file
    for path in markdown_sources():
        if "curl " in path.read_text():
            assert path.name in str(by_file), f"{path.name} has a curl but no example was read"
    assert any(name.startswith("seeds/") for name in by_file), by_file
    scenarios = {scenario_of(e) for e in EXAMPLES}
    assert {"outbound-reference", "control-say", "control-end-call"} <= scenarios


@pytest.mark.unit
def test_the_recorded_seed_examples_are_the_seeds() -> None:
    """The record the suite sends stands for the seeds: equal to what their text gives now."""
    if not seed_sources():
        reason = (
            f"API seeds not found in {seeds_dir()} (a clone alone; set VOICEDOCK_API_SEEDS): "
            f"the seeds' examples are tested from their record, {SEED_RECORD.name}, which this "
            "test cannot compare with them"
        )
        if os.environ.get("CI") == "true":  # CI has ../shared beside the clone
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    for path in seed_sources():
        if "curl -X" in path.read_text():
            sources = [s for e in seed_examples_from_seeds() for s in e.sources]
            assert any(s.startswith(f"seeds/{path.name}:") for s in sources), path.name
    rewrite = f"python tests/user_paths/examples.py --record-seeds rewrites {SEED_RECORD}"
    assert seed_examples_from_seeds() == recorded_seed_examples(), f"the seeds changed: {rewrite}"


def _on(name: str) -> pytest.MarkDecorator:
    # scope="class": one running service per PBX (its class) for all its examples. A
    # function-scoped parametrization would tear the module-scoped ``backend`` down after
    # every example; a module-scoped one makes pytest group each example's cases of the
    # different PBXs together, so a run of several columns in one process ran them in turn,
    # each PBX's service stopped and started again at every change of column.
    return pytest.mark.parametrize(
        ("backend", "example"), _cases(name), indirect=["backend"], scope="class"
    )


async def _send_and_check(backend: UserPathBackend, example: Example) -> None:
    scenario = scenario_of(example)
    assert scenario is not None
    await SCENARIOS[scenario](backend, example)


# A class per PBX: pytest-xdist's ``--dist loadscope`` gives each class to a worker of its own
# choosing, so the two columns can run side by side; each worker starts the service only on
# the PBX of the classes it runs.
@pytest.mark.timeout(90)
@pytest.mark.asyncio(loop_scope="module")
class TestOnAsterisk:
    @_on("asterisk")
    async def test_documented_request(self, backend: UserPathBackend, example: Example) -> None:
        await _send_and_check(backend, example)


@pytest.mark.timeout(90)
@pytest.mark.asyncio(loop_scope="module")
class TestOnFreeswitch:
    @_on("freeswitch")
    async def test_documented_request(self, backend: UserPathBackend, example: Example) -> None:
        await _send_and_check(backend, example)


if "freeswitch-fake" in BACKEND_MARKS:  # off CI (fixtures.py)

    @pytest.mark.timeout(90)
    @pytest.mark.asyncio(loop_scope="module")
    class TestOnTheFakeFreeswitch:
        @_on("freeswitch-fake")
        async def test_documented_request(self, backend: UserPathBackend, example: Example) -> None:
            await _send_and_check(backend, example)


@pytest.mark.unit
def test_every_example_runs_on_each_pbx_that_matters() -> None:
    """Each example runs on the lab Asterisk; each one that places a call, on FreeSWITCH too."""
    for example in EXAMPLES:
        assert _runs_on("asterisk", example), example.id
        assert _runs_on("freeswitch", example) is (scenario_of(example) not in PBX_NEUTRAL)
    assert set(SCENARIOS) > PBX_NEUTRAL
