"""Test suites on the real lab FreeSWITCH (``tests/e2e/test_rehearsal_e2e.py`` on Asterisk): the
example assistant's suite through REST, each test call a mod_loopback pair inside FreeSWITCH
(no gateway); the three scenarios pass on what the caller leg heard, the one expecting a
sentence never said fails naming that expectation; a persona played by the caller model (the LLM
stand-in) asks the hours and a judge model passes the call; FreeSWITCH shows loopback channels
and no sofia (trunk) channel."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import require_offline_speech, warm_offline_speech
from e2e.conftest import LiveService
from e2e.test_rehearsal_e2e import (
    HOURS,
    PERSONA,
    PERSONA_SCENARIO,
    SCENARIOS,
    caller_and_judge,
    store_suite,
    with_example_assistant,
)
from fakes.llm_standin import LlmStandIn
from freeswitch_lab.lab_service import lab_settings, serve_on_lab
from voicedock.config import RehearsalModelSettings
from voicedock_lab.freeswitch import LabFreeswitch

# Both sides are Piper speaking and Whisper listening: a word may be misheard now and then
# (Piper's synthesis is stochastic); a scenario judged on it gets a second run.
pytestmark = [
    pytest.mark.freeswitch_lab,
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.flaky(reruns=1),
]


async def _channels_while(lab: LabFreeswitch, done: asyncio.Event) -> set[str]:
    """The names of every channel FreeSWITCH had while the run ran."""
    seen: set[str] = set()
    while not done.is_set():
        listing = await asyncio.to_thread(lab.api, "show channels as delim |")
        for line in listing.splitlines()[1:]:
            fields = line.split("|")
            if len(fields) > 4:
                seen.add(fields[4])  # the name column
        await asyncio.sleep(0.2)
    return seen


async def test_a_suite_runs_through_freeswitch_loopback_channels(
    freeswitch_lab: LabFreeswitch, tmp_path: Path
) -> None:
    require_offline_speech()
    await warm_offline_speech()
    settings = lab_settings(freeswitch_lab, tmp_path / "fslab.db", None)
    example = with_example_assistant(settings)
    async with LlmStandIn(reply=caller_and_judge) as llm:
        settings.rehearsal.caller_model = RehearsalModelSettings(
            base_url=llm.base_url, model="caller-model"
        )
        settings.rehearsal.judge_model = RehearsalModelSettings(
            base_url=llm.base_url, model="judge-model"
        )
        async with serve_on_lab(freeswitch_lab, settings) as (client, service, key):
            live = LiveService(client, service, key)
            scenarios = [*SCENARIOS, PERSONA_SCENARIO]
            suite_id = await store_suite(live, "Front desk", example, scenarios)
            status, accepted = await live.post(f"/test-suites/{suite_id}/runs", {})
            assert status == 202, accepted
            done = asyncio.Event()
            watching = asyncio.create_task(_channels_while(freeswitch_lab, done))
            run: dict[str, Any] = {}
            try:
                async with asyncio.timeout(240):
                    while True:
                        status, run = await live.get(f"/test-runs/{accepted['id']}")
                        if run["status"] not in ("queued", "running"):
                            break
                        await asyncio.sleep(0.5)
            finally:
                done.set()
                names = await watching
    results = {r["name"]: r for r in run["results"]}
    passing = ("asks the opening hours", "presses 1234#", "barges in over the greeting")
    for name in (*passing, PERSONA_SCENARIO["name"]):
        assert results[name]["outcome"] == "passed", results[name]
    # The persona's lines were the caller model's, spoken on the loopback leg and heard by
    # the assistant's side; the judge's reason is the stand-in's.
    persona = results[PERSONA_SCENARIO["name"]]
    said = " ".join(t["text"] for t in persona["transcript"] if t["role"] == "caller").lower()
    assert "opening hours" in said, persona["transcript"]
    assert persona["expectations"][1]["reason"] == "It gave the opening hours."
    callers = [r for r in llm.requests if r.model == "caller-model"]
    assert PERSONA in (callers[0].system_prompt or "")
    assert callers[1].texts("assistant") == [HOURS]
    failed = results["expects what is never said"]
    assert failed["outcome"] == "failed", failed
    assert failed["reason"].startswith("expectations[0] (said): "), failed
    assert any(name.startswith("loopback/park-a") for name in names), names
    assert not any(name.startswith("sofia/") for name in names), names
