"""Provider outages on real calls (REST → engine → lab Asterisk → a lab party → stand-ins for
the providers): each engine's fallback plan takes over within the turn, and the far end shows
it: what the party heard (its recording, transcribed), what the next entry received, how many
requests the failing provider still got.

* the operator's LLM answers 500 from the second turn on: the organization's backup answers
  every later turn;
* the operator's LLM is slow to start (its first token at 1.6 s): it keeps the turns it answers
  before the backup, asked too after 1.2 s; once the backup is quicker, the backup serves
  them, and the slow LLM's breaker counts no failure;
* the LLM stops midway through a reply: the party hears the sentence said before the stall
  once, then the rest from the next entry, never a half sentence or a sentence twice (also on
  the lab FreeSWITCH: ``tests/freeswitch_lab/test_fallback_plans.py``);
* the cloud voice fails after the greeting: the party hears the replies in the offline voice;
* the cloud recognition fails: the caller's next sentence is transcribed offline and reaches
  the model;
* twenty calls at once while the operator's LLM fails: its breaker opens once and the failing
  server sees a bounded number of requests; no call ends with a provider error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from e2e.audio_helpers import (
    assert_heard,
    read_new_recording,
    require_offline_speech,
    transcribe,
    transcript,
    wait_transcript,
    words,
)
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from e2e.test_calls_e2e import get_call, until
from fakes.llm_standin import ChatRequest, LlmStandIn
from fakes.speech_standin import SpeechStandIn
from voicedock.calls.commands import API_END_CALL
from voicedock.pipeline.fallback_plans.llm import CONTINUE_NOTE
from voicedock.pipeline.pools.provider_health import COOL_DOWN_S, FAILURES_TO_OPEN, BreakerState
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

TALKER = "+31612345693"  # the lab's soak party: says its appointment sentence every ~4 s
DEMO = "+31612345676"  # records, hears the greeting out, says the appointment sentence once
FIRST, SECOND = "Hello, this is the clinic.", "Monday at nine is free."
GREETING = "Hello, city library."
OPERATOR_KEY = "sk-lab-operator"
ORG_KEY = "sk-org-own"


@asynccontextmanager
async def serving(
    lab: LabAsterisk,
    tmp_path: Path,
    operator_llm: LlmStandIn,
    own: Sequence[str] = (),
    *,
    calls: int = 1,
) -> AsyncIterator[LiveService]:
    """The service whose operator LLM is ``operator_llm``; the organization's own servers
    (base URLs ``own``) run on loopback here, listed as providers' hosts; each number carries
    ``calls`` at once."""
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    for number in settings.numbers:
        number.max_concurrent_calls = calls
    settings.speech.openai_base_url = operator_llm.base_url
    settings.speech.openai_api_key = OPERATOR_KEY
    settings.egress.allow_loopback = True
    for url in own:
        settings.egress.provider_hosts.append(url.removeprefix("http://").split("/")[0])
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


def backup(llm: LlmStandIn) -> dict[str, Any]:
    """A fallback entry: the organization's own OpenAI-compatible server."""
    return {
        "provider": "openai-compatible",
        "base_url": llm.base_url,
        "api_key": ORG_KEY,
        "model": "backup",
    }


def backed_up(second: LlmStandIn) -> dict[str, Any]:
    """An assistant on the operator's model, with ``second`` as its fallback plan."""
    return {
        "first_message": "Hello.",
        "llm_config": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "fallback_plan": [backup(second)],
        },
    }


async def place(live: LiveService, destination: str, assistant: dict[str, Any]) -> str:
    resp = await live.client.post(
        "/calls/outbound",
        json={"destination": destination, "assistant": assistant},
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


def switches(call: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["data"] for e in call["events"] if e["type"] == "provider-switch"]


def said_of(message: str) -> str | None:
    """Which reply ``message`` is, whole or cut by a barge-in (None: neither)."""
    cut = message.rstrip(".…")
    return next((reply for reply in (FIRST, SECOND) if cut and reply.startswith(cut)), None)


def spoken_words(text: str) -> list[str]:
    """Every word, in order, repeats kept (``audio_helpers.words`` is a set)."""
    return re.findall(r"[a-z]+", text.lower())


@pytest.fixture
async def offline_speech() -> None:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()


# ---- the LLM: failing from the second turn on --------------------------------------------


async def test_a_primary_llm_failing_from_the_second_turn_leaves_the_call_to_the_next_entry(
    lab: LabAsterisk, tmp_path: Path, offline_speech: None
) -> None:
    async with (
        LlmStandIn(reply=FIRST) as primary,
        LlmStandIn(reply=SECOND) as second,
        serving(lab, tmp_path, primary, [second.base_url]) as live,
    ):
        call_id = await place(live, TALKER, backed_up(second))
        await primary.wait_request(timeout=40)  # the first turn, answered
        primary.fail_all(500)
        await second.wait_request(2, timeout=40)  # two later turns, both answered by the backup
        await control(live, call_id, {"type": "end-call"})
        ended = await wait_recorded(live, call_id, within=20)
    assert (ended["status"], ended["end_reason"]) == ("ended", API_END_CALL)
    said = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    # The party talks every ~4 s: a reply may be cut by its next sentence (stored as heard).
    assert [said_of(m) for m in said[1:]].count(FIRST) == 1, said
    assert [said_of(m) for m in said[1:]].count(SECOND) >= 2, said
    moves = switches(ended)
    assert moves, ended["events"]
    assert {s["engine"] for s in moves} == {"llm"}
    assert moves[0]["from"].startswith("openai/")
    assert moves[0]["to"].endswith("/backup")
    # The breaker: once open, later turns skip the failing server.
    assert len(primary.requests) <= 1 + FAILURES_TO_OPEN + 1, len(primary.requests)
    # The backup received the organization's key and the caller's words.
    assert second.requests[0].headers.get("Authorization") == f"Bearer {ORG_KEY}"


# ---- the LLM: slow to start ----------------------------------------------------------------


def replying(reply: str) -> Callable[[dict[str, Any]], bool]:
    """The assistant's ``reply``, said whole (the party's next words did not cut it)."""
    return lambda m: m["role"] == "assistant" and m["content"] == reply and not m["interrupted"]


async def test_a_slow_llm_keeps_the_turns_it_answers_before_its_backup(
    lab: LabAsterisk, tmp_path: Path, offline_speech: None
) -> None:
    async with (
        LlmStandIn(reply=FIRST, delay_s=1.6) as primary,  # its first token at 1.6 s
        LlmStandIn(reply=SECOND, delay_s=1.5) as second,  # asked at 1.2 s: answers at 2.7 s
        serving(lab, tmp_path, primary, [second.base_url]) as live,
    ):
        call_id = await place(live, TALKER, backed_up(second))
        await wait_transcript(live, call_id, replying(FIRST), within=40)
        raced = list(second.requests)  # asked too, and outrun
        second.delay_s = 0.0  # now the backup answers first
        await wait_transcript(live, call_id, replying(SECOND), within=20)
        await control(live, call_id, {"type": "end-call"})
        ended = await wait_recorded(live, call_id, within=30)
        counts = live.service.speech.provider_health.counts()
    assert (ended["status"], ended["end_reason"]) == ("ended", API_END_CALL)
    # The backup was asked the same conversation as the slow model, after the takeover time.
    assert raced, "the backup was never asked"
    same = [p for p in primary.requests if p.messages == raced[0].messages]
    assert same, raced[0].messages
    # Never before the takeover time (1.2 s); a loaded node's timer fires late (1.78 s once in a
    # full run, the stand-ins and the node sharing one lagging event loop), never near the end
    # of the slow model's reply (its first token at 1.6 s, its words after).
    assert 0.9 <= raced[0].at - same[0].at <= 2.2
    # Each turn names the model whose words were said; a turn the backup won is a switch.
    operator = f"openai/127.0.0.1:{URL(primary.base_url).port}/gpt-4o-mini"
    llms = [turn["llm_provider"] for turn in ended["latency"]]
    assert operator in llms
    assert any(llm.endswith("/backup") for llm in llms), llms
    moves = switches(ended)
    assert moves, ended["events"]
    assert {(m["engine"], m["from"], m["reason"]) for m in moves} == {("llm", operator, "slow")}
    # Slow, never failing: its breaker counted nothing and is closed.
    (endpoint,) = [e for e in counts if e.kind == "llm" and e.model == "gpt-4o-mini"]
    assert counts[endpoint].failures == 0, counts[endpoint]
    assert live.service.speech.provider_health.state(endpoint) is BreakerState.CLOSED


# ---- the LLM: stopping midway through a reply --------------------------------------------

SAID_FIRST = "Monday at nine is free."
REPLY = f"{SAID_FIRST} We also have Friday at ten."


@asynccontextmanager
async def stalling_models() -> AsyncIterator[tuple[LlmStandIn, LlmStandIn]]:
    """The operator's model streams the first sentence of ``REPLY`` and half the second
    ("We also"), then nothing more; the backup, as a model may, ignores the note to go on and
    answers the whole reply."""
    async with (
        LlmStandIn(reply=REPLY, hang_after_words=7) as primary,
        LlmStandIn(reply=REPLY) as second,
    ):
        yield primary, second


def finishing(second: LlmStandIn) -> dict[str, Any]:
    return {
        "first_message": GREETING,
        "llm_config": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "fallback_plan": [backup(second)],
        },
    }


async def finished_once(live: LiveService, call_id: str, primary: LlmStandIn) -> None:
    """Once the reply was finished: the operator's server down for good (the call's analysis
    goes to the backup at once; a stream stalling after its first token is waited for up to
    the analysis' own 15 s), and the call ended."""
    await wait_transcript(live, call_id, lambda m: "Friday" in m["content"], within=20)
    primary.fail_all(500)
    await control(live, call_id, {"type": "end-call"})


def assert_finished_once(ended: dict[str, Any], asked: ChatRequest, heard: str) -> None:
    """The reply of ``stalling_models`` was said once, whole, and ``heard`` so."""
    assert (ended["status"], ended["end_reason"]) == ("ended", API_END_CALL)
    # The backup was asked to go on from the whole sentence said, the half one dropped.
    assert asked.messages[-2:] == [
        {"role": "assistant", "content": SAID_FIRST},
        {"role": "system", "content": CONTINUE_NOTE},
    ]
    # The reply's move (then the analysis', from the server refusing by then).
    assert [(m["engine"], m["reason"]) for m in switches(ended)] == [
        ("llm", "timeout"),
        ("llm", "server-error"),
    ]
    replies = [m["content"] for m in transcript(ended, "assistant")][1:]
    assert replies == [REPLY], replies
    # What the party heard: the reply once, whole; no sentence or half sentence twice.
    said = spoken_words(heard)
    assert [said.count(w) for w in ("monday", "also", "friday")] == [1, 1, 1], heard
    assert {"city", "library"} <= set(said), heard


async def test_a_reply_whose_llm_stops_midway_is_finished_by_the_next_entry_and_heard_once(
    lab: LabAsterisk, tmp_path: Path, offline_speech: None
) -> None:
    async with (
        stalling_models() as (primary, second),
        serving(lab, tmp_path, primary, [second.base_url]) as live,
    ):
        before = set(lab.recordings_dir.glob("demo-*-rx.wav"))
        call_id = await place(live, DEMO, finishing(second))
        asked = await second.wait_request(timeout=45)
        await finished_once(live, call_id, primary)
        ended = await wait_recorded(live, call_id, within=20)
        pcm, rate = await read_new_recording(lab.recordings_dir, "demo-*-rx.wav", before)
    assert_finished_once(ended, asked, await transcribe(pcm, rate))


# ---- the voice: the cloud's failing after the greeting -----------------------------------

REPLY_TWO = "Monday at nine is free. Shall I book it for you?"
CONFIRMED = "Your booking is confirmed."


async def test_a_voice_failing_midway_leaves_the_call_speaking_in_the_next_voice(
    lab: LabAsterisk, tmp_path: Path, offline_speech: None
) -> None:
    async with (
        LlmStandIn(reply=REPLY_TWO) as llm,
        SpeechStandIn(answers=1) as voice,  # speaks the greeting, then fails every sentence
        serving(lab, tmp_path, llm, [voice.base_url]) as live,
    ):
        assistant = {
            "first_message": GREETING,
            "llm_config": {"provider": "openai", "model": "gpt-4o-mini"},
            "tts_config": {
                "provider": "openai",
                "base_url": voice.base_url,
                "api_key": ORG_KEY,
                "voice": "alloy",
                "fallback_plan": [{"provider": "piper"}],
            },
        }
        before = set(lab.recordings_dir.glob("demo-*-rx.wav"))
        call_id = await place(live, DEMO, assistant)
        await wait_transcript(live, call_id, lambda m: "book it" in m["content"], within=45)
        # A later turn of the call: said in the voice the call moved to.
        await control(live, call_id, {"type": "say", "content": CONFIRMED})
        await wait_transcript(live, call_id, lambda m: m["content"] == CONFIRMED, within=20)
        await control(live, call_id, {"type": "end-call"})
        ended = await wait_recorded(live, call_id, within=20)
        pcm, rate = await read_new_recording(lab.recordings_dir, "demo-*-rx.wav", before)
    assert (ended["status"], ended["end_reason"]) == ("ended", API_END_CALL)
    # The cloud voice spoke the greeting, failed the reply's first sentence, and was asked
    # for nothing more: the call kept the next voice.
    assert voice.spoken == [GREETING, "Monday at nine is free."], voice.spoken
    (move,) = switches(ended)
    assert move["engine"] == "tts"
    assert move["from"].startswith("openai/127.0.0.1")
    assert move["to"] == "piper"
    heard = await transcribe(pcm, rate)
    assert_heard({"monday", "free", "book", "booking", "confirmed"}, heard)


# ---- the ears: the cloud's recognition failing ---------------------------------------------

CLOUD_HEARD = "I need a dentist."


async def test_speech_recognition_failing_midway_still_hears_the_callers_next_sentence(
    lab: LabAsterisk, tmp_path: Path, offline_speech: None
) -> None:
    async with (
        LlmStandIn(reply="Okay.") as llm,
        SpeechStandIn(transcript=CLOUD_HEARD, answers=1) as ears,
        serving(lab, tmp_path, llm, [ears.base_url]) as live,
    ):
        assistant = {
            "first_message": "Hello.",
            "llm_config": {"provider": "openai", "model": "gpt-4o-mini"},
            "stt_config": {
                "provider": "openai",
                "base_url": ears.base_url,
                "api_key": ORG_KEY,
                "model": "whisper-1",
                "fallback_plan": [{"provider": "offline"}],
            },
        }
        call_id = await place(live, TALKER, assistant)
        first = await llm.wait_request(timeout=40)  # the cloud's transcript
        await ears.wait_request(2, timeout=20)  # the next turn: the cloud fails it
        later = await llm.wait_request(2, timeout=20)
        await control(live, call_id, {"type": "end-call"})
        ended = await wait_recorded(live, call_id, within=20)
    assert (ended["status"], ended["end_reason"]) == ("ended", API_END_CALL)
    assert first.last_user_text == CLOUD_HEARD
    # The sentence the cloud failed, transcribed offline from the same audio.
    assert {"appointment", "monday"} <= words(later.last_user_text), later.last_user_text
    moves = switches(ended)
    assert moves, ended["events"]
    assert {(m["engine"], m["to"]) for m in moves} == {("stt", "offline")}, moves


# ---- twenty calls at once while the operator's LLM fails ---------------------------------

CALLS = 20


async def test_many_calls_during_an_llm_outage_open_its_breaker_once_and_all_go_on(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    # Cloud-style speech stand-ins (no offline models: twenty calls on a small machine).
    async with (
        LlmStandIn(reply="Okay.") as failing,
        LlmStandIn(reply=SECOND) as second,
        SpeechStandIn() as speech,
        serving(lab, tmp_path, failing, [second.base_url, speech.base_url], calls=CALLS) as live,
    ):
        failing.fail_all(500)
        cloud = {"provider": "openai", "base_url": speech.base_url, "api_key": ORG_KEY}
        assistant = {
            "first_message": "Hello.",
            "stt_config": {**cloud, "model": "whisper-1"},
            "tts_config": {**cloud, "voice": "alloy"},
            "llm_config": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "fallback_plan": [backup(second)],
            },
        }
        started = asyncio.get_running_loop().time()
        call_ids = await asyncio.gather(*(place(live, TALKER, assistant) for _ in range(CALLS)))

        async def all_answered_twice() -> bool:
            calls = [await get_call(live, call_id) for call_id in call_ids]
            said = [
                [said_of(m["content"]) for m in transcript(call, "assistant")] for call in calls
            ]
            return all(replies.count(SECOND) >= 2 for replies in said)

        await second.wait_request(2 * CALLS, timeout=40)
        await until(all_answered_twice, within=20)
        for call_id in call_ids:
            await control(live, call_id, {"type": "end-call"})
        ended = [await wait_recorded(live, call_id, within=20) for call_id in call_ids]
        elapsed = asyncio.get_running_loop().time() - started
        counts = live.service.speech.provider_health.counts()
    assert [(c["status"], c["end_reason"]) for c in ended] == [("ended", API_END_CALL)] * CALLS
    # The breaker's rules bound what the failing server saw: while closed, the calls' requests
    # at most until the third failure came back (two before it, and one in flight per call);
    # once open, only one probe per cool-down.
    probes = int(elapsed // COOL_DOWN_S)
    bound = FAILURES_TO_OPEN - 1 + CALLS + probes
    assert FAILURES_TO_OPEN <= len(failing.requests) <= bound, (len(failing.requests), bound)
    (endpoint,) = [e for e in counts if e.kind == "llm" and e.model == "gpt-4o-mini"]
    assert counts[endpoint].opened == 1, counts[endpoint]
    assert counts[endpoint].requests == len(failing.requests)
    # Every call was answered by the backup, turn after turn.
    assert len(second.requests) >= 2 * CALLS
