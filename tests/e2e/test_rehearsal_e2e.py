"""Test suites on the real lab Asterisk, driven through REST as an organization would: a suite
for the offline example assistant (voicedock.example.toml's, with its facts) whose simulated
callers ask the opening hours, press 1234#, and barge in over the greeting with the same
question, all three passing on what each caller leg heard (transcribed by the offline Whisper
from the audio it received); a fourth expecting a sentence the assistant never says fails with
a reason naming that expectation. ARI shows each test call was a Local channel pair in the
``voicedock-test`` context and no trunk channel (PJSIP) was made; the test calls stay out of
``GET /calls`` unless ``include_tests=true``."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import msgspec
import pytest

from e2e.audio_helpers import require_offline_speech, warm_offline_speech
from e2e.browser import headless_chromium
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_console_browser_e2e import signed_in, wait_for
from e2e.test_metrics_e2e import samples, scrape
from e2e.test_tools_e2e import TOOLS, assistant
from fakes.llm_standin import ChatRequest, LlmStandIn, ToolCalls
from fakes.tool_server import Answer, ToolServer
from fakes.world import ACME
from voicedock.cli import main
from voicedock.config import (
    AssistantSettings,
    RehearsalModelSettings,
    Settings,
    WebhookEndpointSettings,
    load_settings,
)
from voicedock.domain.webhooks import generate_secret
from voicedock.pbx.asterisk.originate import TEST_CONTEXT
from voicedock_lab.server import LabAsterisk

# Both sides are Piper speaking and Whisper listening: a word may be misheard now and then
# (Piper's synthesis is stochastic); a scenario judged on it gets a second run.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asterisk,
    pytest.mark.timeout(420),
    pytest.mark.flaky(reruns=1),
]

EXAMPLE = Path(__file__).resolve().parents[2] / "voicedock.example.toml"
HOURS = "What are your opening hours?"
# The example assistant's keywords for them: one heard is enough, a word misheard beside it.
HOURS_WORDS = "opening hours|opening|open|hours"
FACT = "Monday to Friday from nine to five"
# What a said expectation asks of it: Whisper writes its tail as "9 to 5", "9-5" or "for 9-5"
# as Piper's varying voice says it (the days, never misheard in these runs, are the fact).
HEARD_FACT = "Monday to Friday"
CHANGED_FACT = "We are open on Saturdays from ten until two."
SECRET = generate_secret()

SCENARIOS: list[dict[str, Any]] = [
    {
        "name": "asks the opening hours",
        "steps": [{"type": "say", "text": HOURS}],
        "expectations": [
            {"type": "said", "contains": HEARD_FACT},
            {"type": "latency", "p95_ms": 30_000},
        ],
    },
    {
        "name": "presses 1234#",
        "steps": [{"type": "press", "keys": "1234#"}],
        # The rule-based model answers a turn it has no fact for with "I understood: ...":
        # the keypad turn reached it.
        "expectations": [{"type": "said", "regex": r"understood"}],
    },
    {
        "name": "barges in over the greeting",
        "steps": [{"type": "say", "text": HOURS, "when": "over-assistant"}],
        "expectations": [{"type": "said", "contains": HEARD_FACT}],
    },
    {
        "name": "expects what is never said",
        "steps": [{"type": "say", "text": HOURS}],
        "expectations": [{"type": "said", "contains": "we are closed on Sundays and holidays"}],
    },
]


@pytest.fixture(autouse=True)
def _offline_speech() -> None:
    require_offline_speech()


async def _channels_while(live: LiveService, done: asyncio.Event) -> list[tuple[str, str]]:
    """Every channel Asterisk had while the run ran: (name, dialplan context)."""
    seen: dict[str, tuple[str, str]] = {}
    while not done.is_set():
        for channel in await live.pbx.ari.list_channels():
            seen.setdefault(channel.id, (channel.name, channel.dialplan_context))
        await asyncio.sleep(0.2)
    return list(seen.values())


async def _run_to_end(live: LiveService, run_id: str, within: float) -> dict[str, Any]:
    run: dict[str, Any] = {}
    async with asyncio.timeout(within):
        while True:
            status, run = await live.get(f"/test-runs/{run_id}")
            assert status == 200, run
            if run["status"] not in ("queued", "running"):
                return run
            await asyncio.sleep(0.5)


def with_example_assistant(settings: Settings) -> AssistantSettings:
    """``settings`` with voicedock.example.toml's assistant, its facts the rule-based model's
    too (an assistant's own facts go to its prompt): the example assistant as configured."""
    example = load_settings(EXAMPLE, environ={}).assistants[0]
    assert example.facts[HOURS_WORDS].endswith(f"{FACT}.")
    llm = {"provider": "rule_based", "facts": dict(example.facts)}
    settings.assistants = [msgspec.structs.replace(example, llm_config=llm)]
    settings.rehearsal.max_concurrent = 2  # the lab machine's two cores
    return example


async def example_id(live: LiveService, example: AssistantSettings) -> str:
    """The example assistant's id, as ``GET /assistants`` lists it."""
    status, listed = await live.get("/assistants")
    assert status == 200, listed
    (assistant,) = [a for a in listed["assistants"] if a["name"] == example.name]
    return str(assistant["id"])


async def patch_example(
    live: LiveService, example: AssistantSettings, body: dict[str, Any]
) -> None:
    """The example assistant changed through REST (``PATCH /assistants/{id}``)."""
    resp = await live.client.patch(
        f"/assistants/{await example_id(live, example)}", json=body, headers=live.auth()
    )
    assert resp.status == 200, await resp.text()


async def store_suite(
    live: LiveService, name: str, example: AssistantSettings, scenarios: list[dict[str, Any]]
) -> str:
    """A suite of ``scenarios`` for the example assistant, stored through REST: its id."""
    assistant_id = await example_id(live, example)
    status, suite = await live.post(
        "/test-suites", {"name": name, "assistant_id": assistant_id, "scenarios": scenarios}
    )
    assert status == 201, suite
    return str(suite["id"])


async def test_a_suite_runs_through_the_pbx_and_judges_what_the_caller_heard(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    await warm_offline_speech()
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    example = with_example_assistant(settings)
    live = await serve(settings)
    try:
        suite_id = await store_suite(live, "Front desk", example, SCENARIOS)
        status, accepted = await live.post(f"/test-suites/{suite_id}/runs", {})
        assert status == 202, accepted
        done = asyncio.Event()
        watching = asyncio.create_task(_channels_while(live, done))
        try:
            run = await _run_to_end(live, accepted["id"], within=360)
        finally:
            done.set()
            channels = await watching

        results = {r["name"]: r for r in run["results"]}
        assert set(results) == {s["name"] for s in SCENARIOS}, run
        for name in ("asks the opening hours", "presses 1234#", "barges in over the greeting"):
            assert results[name]["outcome"] == "passed", results[name]
        failed = results["expects what is never said"]
        assert failed["outcome"] == "failed", failed
        assert failed["reason"].startswith("expectations[0] (said): "), failed
        assert "we are closed on Sundays and holidays" in failed["reason"]
        assert run["status"] == "failed"
        # What the caller heard is the assistant's greeting and answer, as transcribed.
        heard = " ".join(
            t["text"]
            for t in results["asks the opening hours"]["heard"]
            if t["role"] == "assistant"
        ).lower()
        assert "monday to friday" in heard, heard
        # The barge-in cut the greeting (the engine's record of what was said of it).
        barged = results["barges in over the greeting"]["transcript"]
        greeting = next(t["text"] for t in barged if t["role"] == "assistant")
        assert greeting != example.first_message, barged
        assert example.first_message.startswith(greeting), barged
        # The engine's side: the keypad turn reached the model as one user turn.
        keypad = results["presses 1234#"]["transcript"]
        assert any(t["role"] == "caller" and "1234#" in t["text"] for t in keypad), keypad

        # Each test call was a Local channel pair in the test context; no trunk channel.
        names = [name for name, _ in channels]
        assert any(name.startswith("Local/") and f"@{TEST_CONTEXT}" in name for name in names)
        assert not any(name.startswith("PJSIP/") for name in names), names
        # Kept out of the calls list unless asked for.
        status, calls = await live.get("/calls")
        assert calls["calls"] == []
        status, calls = await live.get("/calls?include_tests=true")
        test_calls = {c["id"] for c in calls["calls"]}
        assert {r["call_id"] for r in run["results"]} <= test_calls

        # The CLI an organization's CI runs: the passing scenarios exit 0, each in the report.
        file, junit = tmp_path / "suite.json", tmp_path / "junit.xml"
        file.write_text(json.dumps({"name": "CI", "scenarios": SCENARIOS[:3]}))
        argv = ["test", "run", str(file), "--assistant", example.name, "--junit", str(junit)]
        url = f"http://127.0.0.1:{live.client.port}"
        with pytest.MonkeyPatch.context() as env:
            env.setenv("VOICEDOCK_API_KEY", live.key)
            assert await asyncio.to_thread(main, [*argv, "--url", url]) == 0
        report = ET.fromstring(junit.read_bytes())
        cases = report.findall("testcase")
        assert [c.get("name") for c in cases] == [s["name"] for s in SCENARIOS[:3]]
        assert (report.get("failures"), report.get("errors")) == ("0", "0")

        # The assistant's facts changed (the rule-based model's, llm_config.facts): the same
        # suite exits 1, its report naming the opening hours' said expectation.
        llm = {"provider": "rule_based", "facts": {HOURS_WORDS: CHANGED_FACT}}
        await patch_example(live, example, {"llm_config": llm})
        with pytest.MonkeyPatch.context() as env:
            env.setenv("VOICEDOCK_API_KEY", live.key)
            assert await asyncio.to_thread(main, [*argv, "--url", url]) == 1
        report = ET.fromstring(junit.read_bytes())
        cases = {c.get("name"): c for c in report.findall("testcase")}
        assert list(cases) == [s["name"] for s in SCENARIOS[:3]]
        failure = cases["asks the opening hours"].find("failure")
        assert failure is not None, ET.tostring(report)
        message = failure.get("message", "")
        assert message.startswith("expectations[0] (said): "), message
        assert f'"{HEARD_FACT}" not heard' in message
        assert "saturday" in message.lower(), message  # what the caller heard instead
        assert cases["presses 1234#"].find("failure") is None
    finally:
        await live.client.close()


async def test_a_release_is_published_only_after_its_suite_passed_through_the_pbx(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    """An assistant gated on a suite (the opening hours asked): a draft that says other hours
    is run through the PBX, fails, and its publish is refused with that run's result while
    calls run the live version; a draft that keeps the hours passes and is published."""
    await warm_offline_speech()
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    example = with_example_assistant(settings)
    live = await serve(settings)
    try:
        aid = await example_id(live, example)
        suite_id = await store_suite(live, "Release gate", example, SCENARIOS[:1])
        resp = await live.client.put(
            f"/assistants/{aid}/release-gate", json={"test_suite_id": suite_id}, headers=live.auth()
        )
        assert resp.status == 200, await resp.text()
        llm = {"provider": "rule_based", "facts": {HOURS_WORDS: CHANGED_FACT}}
        status, failing = await live.post(f"/assistants/{aid}/drafts", {"llm_config": llm})
        assert (status, failing["version"], failing["published_at"]) == (201, 2, None), failing

        status, accepted = await live.post(
            f"/test-suites/{suite_id}/runs", {"assistant_version": 2}
        )
        assert status == 202, accepted
        run = await _run_to_end(live, accepted["id"], within=120)
        assert (run["status"], run["assistant_version"]) == ("failed", 2), run
        (result,) = run["results"]
        status, call = await live.get(f"/calls/{result['call_id']}")
        assert (status, call["assistant_version"]) == (200, 2), call
        status, refused = await live.post(f"/assistants/{aid}/publish", {"version": 2})
        assert (status, refused["error"]) == (409, "Release gate not passed"), refused
        assert (refused["test_run_id"], refused["test_run_status"]) == (run["id"], "failed")
        assert f'"{HEARD_FACT}" not heard' in refused["message"], refused
        status, shown = await live.get(f"/assistants/{aid}")
        assert shown["version"] == 1  # its calls still run the live version

        greeting = "Hello, this is Acme Corp. What can I do for you?"
        status, passing = await live.post(f"/assistants/{aid}/drafts", {"first_message": greeting})
        assert (status, passing["version"]) == (201, 3), passing
        status, accepted = await live.post(
            f"/test-suites/{suite_id}/runs", {"assistant_version": 3}
        )
        run = await _run_to_end(live, accepted["id"], within=120)
        assert run["status"] == "passed", run
        status, published = await live.post(f"/assistants/{aid}/publish", {"version": 3})
        assert status == 200, published
        assert (published["version"], published["first_message"]) == (3, greeting)
    finally:
        await live.client.close()


BOOK = "I would like to book an appointment on Monday."
CANNED = '{"confirmation": "RX-42", "time": "09:00"}'
BOOKED = "You are booked for Monday at nine."
MONDAY = {"day": "Monday"}


def booking_model(request: ChatRequest) -> str | ToolCalls:
    """Books through the tool for the caller's request; with its result, speaks."""
    if any(m.get("role") == "tool" for m in request.messages):
        return BOOKED
    if "appointment" in request.last_user_text.lower():
        return ToolCalls((("book_appointment", MONDAY),))
    return "How can I help?"


async def test_a_mocked_tool_answers_the_model_and_the_organization_s_server_is_not_asked(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    """A draft assistant (``assistant`` in the run's body, never saved) whose model calls a
    webhook tool: the scenario's mock answers it, its canned result reaches the model's next
    request, the organization's tool server gets nothing, the expectations hold."""
    await warm_offline_speech()
    async with (
        LlmStandIn(reply=booking_model) as llm,
        ToolServer(
            SECRET, {"book_appointment": Answer({"result": "from the real server"})}
        ) as server,
    ):
        settings = service_settings(lab, tmp_path / "e2e.db", "ari")
        settings.speech.openai_base_url = llm.base_url
        settings.speech.openai_api_key = "sk-lab-operator"
        settings.egress.allow_loopback = True
        settings.webhooks.endpoints = [
            WebhookEndpointSettings(
                name="tools", organization=ACME, url=server.url, secret=SECRET,
                event_types=["tool-calls"],
            )
        ]  # fmt: skip
        live = await serve(settings)
        try:
            scenario = {
                "name": "books on Monday",
                "steps": [{"type": "say", "text": BOOK}],
                "tool_mocks": [{"name": "book_appointment", "result": CANNED}],
                "expectations": [
                    {"type": "tool-called", "name": "book_appointment", "arguments": MONDAY},
                    {"type": "said", "contains": "Monday at nine"},
                ],
            }  # fmt: skip
            status, suite = await live.post(
                "/test-suites", {"name": "Bookings", "scenarios": [scenario]}
            )
            assert status == 201, suite
            draft = assistant(TOOLS[:1])  # book_appointment
            status, accepted = await live.post(
                f"/test-suites/{suite['id']}/runs", {"assistant": draft}
            )
            assert status == 202, accepted
            run = await _run_to_end(live, accepted["id"], within=180)
        finally:
            await live.client.close()
        (result,) = run["results"]
        assert (run["status"], result["outcome"]) == ("passed", "passed"), json.dumps(run)
        assert [v["passed"] for v in result["expectations"]] == [True, True]
        # The canned result reached the model as the tool's answer; the server got nothing.
        answered = [r for r in llm.requests if any(m.get("role") == "tool" for m in r.messages)]
        assert answered, [r.messages for r in llm.requests]
        assert answered[0].texts("tool") == [CANNED]
        assert (server.received, server.refused) == ([], 0)


def _run_from_console(
    driver: Any, base: str, key: str, suite_id: str
) -> tuple[str, list[str], list[str]]:
    """Signed in, the Tests page: the suite run with its button, its result awaited; the
    run's status, the failed expectations and the recordings' players as shown."""
    from selenium.webdriver.common.by import By

    signed_in(driver, base, key)
    driver.find_element(By.ID, "tests-link").click()
    button = wait_for(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, f'button[data-suite-id="{suite_id}"]') or False,
        "the suite's Run button",
    )[0]
    button.click()
    state = wait_for(
        driver,
        lambda d: (
            (s := d.find_element(By.ID, "run-state").get_attribute("data-status"))
            not in ("", "queued", "running")
            and s
        ),
        "the run's end",
        timeout=150,
    )
    failed = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".expectations li.failed")]
    players = driver.find_elements(By.CSS_SELECTOR, ".scenario audio.recording")
    return str(state), failed, [str(p.get_attribute("src")) for p in players]


async def test_the_console_runs_a_suite_and_shows_the_failed_expectation(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    await warm_offline_speech()
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.recordings.directory = str(tmp_path / "recordings")
    example = with_example_assistant(settings)
    live = await serve(settings)
    try:
        await patch_example(live, example, {"record": True})
        suite_id = await store_suite(live, "Console", example, SCENARIOS[3:])
        base = f"http://127.0.0.1:{live.client.port}"
        with headless_chromium() as driver:
            state, failed, players = await asyncio.to_thread(
                _run_from_console, driver, base, live.key, suite_id
            )
    finally:
        await live.client.close()
    assert state == "failed"
    (shown,) = failed
    assert shown.startswith("expectations[0] (said): ")
    assert "we are closed on Sundays and holidays" in shown
    (player,) = players  # the test call's recording, playable beside its result
    assert player.startswith(f"{base}/calls/call-"), player
    assert player.endswith("/recording"), player


PERSONA = "You are Ann. You want to know the clinic's opening hours, then you say goodbye."
GIVES_HOURS = "The assistant tells the caller its opening hours."
ASKS_NAME = "The assistant asks the caller for their name."
NO_NAME = "The assistant never asked for a name."
METRICS_TOKEN = "metrics-token-for-the-rehearsal-test"
PERSONA_SCENARIO: dict[str, Any] = {
    "name": "Ann asks the hours",
    "persona": PERSONA,
    "expectations": [
        {"type": "said", "contains": HEARD_FACT},
        {"type": "judge", "rubric": GIVES_HOURS},
    ],
}


def caller_and_judge(request: ChatRequest) -> str:
    """The caller model plays Ann: asks the hours, then says goodbye and hangs up; the judge
    model passes the hours' rubric and fails the other, with its reason."""
    if request.model == "judge-model":
        rubric = request.last_user_text
        if GIVES_HOURS in rubric:
            return '{"pass": true, "reason": "It gave the opening hours."}'
        return json.dumps({"pass": False, "reason": NO_NAME})
    asked = sum(1 for m in request.messages if m.get("role") == "assistant")
    return HOURS if asked == 0 else "Thank you, goodbye. [hang up]"


async def test_a_persona_is_played_by_the_caller_model_and_a_judge_model_grades_the_call(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    """A scenario with a persona and no steps: the operator's caller model (the stand-in) is
    asked, after each turn the caller leg heard, what the caller says next; its words are
    spoken on the leg (the assistant's side transcribes them) until it hangs up. The judge
    model is sent each rubric with both sides as heard; its verdicts and reasons are the
    expectations'."""
    await warm_offline_speech()
    async with LlmStandIn(reply=caller_and_judge) as llm:
        settings = service_settings(lab, tmp_path / "e2e.db", "ari")
        example = with_example_assistant(settings)
        rehearsal = settings.rehearsal
        rehearsal.caller_model = RehearsalModelSettings(
            base_url=llm.base_url, model="caller-model", api_key="sk-lab-caller"
        )
        rehearsal.judge_model = RehearsalModelSettings(base_url=llm.base_url, model="judge-model")
        settings.recordings.directory = str(tmp_path / "recordings")
        settings.metrics.bearer_token = METRICS_TOKEN
        live = await serve(settings)
        try:
            await patch_example(live, example, {"record": True})
            expectations = [
                *PERSONA_SCENARIO["expectations"],
                {"type": "judge", "rubric": ASKS_NAME},
            ]
            scenario = {**PERSONA_SCENARIO, "expectations": expectations}
            suite_id = await store_suite(live, "Personas", example, [scenario])
            status, accepted = await live.post(f"/test-suites/{suite_id}/runs", {})
            assert status == 202, accepted
            run = await _run_to_end(live, accepted["id"], within=120)
            (result,) = run["results"]
            # The test call's recording, linked from its result.
            assert result["recording_url"] == f"/calls/{result['call_id']}/recording", result
            resp = await live.client.get(result["recording_url"], headers=live.auth())
            assert resp.status == 200
            assert len(await resp.read()) > 8000
            # Kept out of the calls the metrics count.
            status, text = await scrape(live, METRICS_TOKEN)
            assert status == 200
            counted = {name for name, _ in samples(text)}
            assert not counted & {"voicedock_calls", "voicedock_calls_ended_total"}, text
        finally:
            await live.client.close()

    assert result["outcome"] == "failed", json.dumps(run)
    verdicts = result["expectations"]
    assert [v["passed"] for v in verdicts] == [True, True, False], verdicts
    assert verdicts[1]["reason"] == "It gave the opening hours."
    assert result["reason"] == f"expectations[2] (judge): {NO_NAME}"

    # The caller model: the persona its instructions, the greeting as the caller leg heard it
    # before its first line, the answer heard before its second; its key sent.
    callers = [r for r in llm.requests if r.model == "caller-model"]
    assert len(callers) == 2, [r.messages for r in callers]
    first, second = callers
    assert PERSONA in (first.system_prompt or "")
    assert "help" in first.last_user_text.lower(), first.messages
    assert first.authorization == "Bearer sk-lab-caller"
    assert "monday to friday" in second.last_user_text.lower(), second.messages
    assert second.texts("assistant") == [HOURS]
    # What the caller said, as the assistant's side heard it (the engine's transcript; Whisper
    # on a loaded runner once heard "opening now": the question's one word it never misses).
    said = " ".join(t["text"] for t in result["transcript"] if t["role"] == "caller").lower()
    assert "opening" in said, result["transcript"]
    heard = [t["text"] for t in result["heard"] if t["role"] == "caller"]
    assert heard == [HOURS, "Thank you, goodbye."], result["heard"]
    # The judge model: each rubric, with both sides of the call.
    judges = [r for r in llm.requests if r.model == "judge-model"]
    assert len(judges) == 2
    asked = judges[0].last_user_text
    assert GIVES_HOURS in asked
    assert f"caller: {HOURS}" in asked
    assert "monday to friday" in asked.lower()
