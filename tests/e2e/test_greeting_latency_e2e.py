"""Twenty callees answering together hear the greeting at once (the real service, lab Asterisk).

Twenty outbound calls with the offline voice are placed through REST to the lab's silent party,
which answers at once and listens: they answer within a moment of each other. For each call,
from its own record (``GET /calls/{id}``): the answer (``started_at``) to the greeting's first
audio (the ``started_at`` of its first assistant ``transcript`` event). The greeting is
synthesized while the calls ring (``[speech] presynthesis``), once for all of them. Each call's
record also tells its media leg's set-up (``timings``): the answer to the media connected
(bridged with the callee) and to the first audio written, the same moment as its transcript's.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import SILENT_PARTY, require_offline_speech, warm_offline_speech
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_calls_e2e import TERMINAL, get_call, wait_status
from fakes.world import SUPPORT_ID
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

CALLS = 20
GREETING = "Hello, this is the dental clinic. How can I help you?"
# Measured on the 2-core lab machine (three runs): p95 0.23-0.74 s, max 0.92 s; the same runs
# with ``presynthesis = false`` (the greetings synthesized after the answer, one after
# another): p95 7.2-8.1 s. The bound leaves twice the worst run for a loaded CI machine.
P95_BOUND_S = 1.5


@pytest.fixture
async def campaign(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[LiveService]:
    require_offline_speech()
    await warm_offline_speech()
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    for number in settings.numbers:
        number.max_concurrent_calls = CALLS + 5  # the whole campaign at once
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def greeting_delay(call: dict[str, Any]) -> float | None:
    """Seconds from the answer to the greeting's first audio, from the call's own record
    (None until the greeting was heard whole: the party never talks over it, so a greeting
    cut short is one its media lost)."""
    spoken = [
        e["data"]
        for e in call["events"]
        if e["type"] == "transcript" and e["data"]["role"] == "assistant"
    ]
    if call["started_at"] is None or not spoken or spoken[0]["interrupted"]:
        return None
    return (when(spoken[0]["started_at"]) - when(call["started_at"])).total_seconds()


async def check_timings(fetch: Callable[[], Awaitable[dict[str, Any]]], delay: float) -> None:
    """The call's stored ``timings`` (with its record, a moment after it ended) agree with its
    transcript: the media connected before the first audio was written, that at the
    greeting's start. The transcript notes the audio queued, the timings the first frame the
    media wrote of it: never much before, and after it by the media's ticks, which a loaded
    machine delays (the 20 calls' media share one event loop: 0.76 s once in a full CI run on
    two cores). Within a second, the two records tell the same moment: the greeting is three
    seconds long, so a first frame counted from anywhere else in it would be later."""
    async with asyncio.timeout(10):
        while (timings := (await fetch())["timings"]) is None:
            await asyncio.sleep(0.1)
    assert 0 <= timings["media_connected_ms"] <= timings["first_audio_ms"], timings
    assert -0.05 < timings["first_audio_ms"] / 1000 - delay < 1.0, (timings, delay)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


async def place(live: LiveService) -> str:
    body = {
        "destination": SILENT_PARTY,
        "assistant_id": SUPPORT_ID,
        "assistant_override": {"first_message": GREETING},
    }
    status, answer = await live.post("/calls/outbound", body)
    assert status == 200, answer
    return str(answer["call_id"])


def not_greeted(call: dict[str, Any]) -> str:
    """What the record of a call that was not greeted says: how far it came (its status, why
    it ended, its media leg's set-up) and its timeline, event by event."""
    timeline = [
        f"{e['created_at']} {e['type']} "
        + " ".join(f"{k}={v!r}" for k, v in e["data"].items() if k != "content")
        for e in call["events"]
    ]
    fields = ("status", "end_reason", "error", "started_at", "ended_at", "timings")
    summary = " ".join(f"{name}={call.get(name)!r}" for name in fields)
    return "\n".join([f"{call['id']} not greeted: {summary}", *timeline])


async def greeted(live: LiveService, call_id: str, within: float = 30.0) -> float:
    """The call's answer → greeting delay once its record holds the greeting, then ends it.
    A call that ends without it, or ``within`` seconds without it, fail naming what the
    record says instead."""
    call: dict[str, Any] = {}
    try:
        async with asyncio.timeout(within):
            while (delay := greeting_delay(call := await live.call(call_id))) is None:
                if call["status"] in TERMINAL:
                    raise AssertionError(not_greeted(call))
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(not_greeted(call or await live.call(call_id))) from None
    status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
    assert status == 200, body
    return delay


async def all_greeted(live: LiveService, call_ids: list[str]) -> list[float]:
    """``greeted`` for every call at once; fails naming every call not greeted, each with its
    record."""
    delays = await asyncio.gather(
        *(greeted(live, call_id) for call_id in call_ids), return_exceptions=True
    )
    failures = [str(d) for d in delays if isinstance(d, BaseException)]
    if failures:
        raise AssertionError("\n\n".join(failures))
    return [d for d in delays if not isinstance(d, BaseException)]


async def test_twenty_callees_answering_together_hear_the_greeting_at_once(
    campaign: LiveService,
) -> None:
    live = campaign
    call_ids = await asyncio.gather(*(place(live) for _ in range(CALLS)))
    delays = await all_greeted(live, call_ids)
    for call_id, delay in zip(call_ids, delays, strict=True):
        ended = await wait_status(live, call_id, TERMINAL, within=30)
        assert ended["status"] == "ended", ended
        await check_timings(partial(get_call, live, call_id), delay)
    print(  # the measurement, for the record (pytest -s)
        f"answer → greeting first audio over {CALLS} calls: "
        f"p50 {sorted(delays)[CALLS // 2]:.3f} s, p95 {p95(delays):.3f} s, max {max(delays):.3f} s"
    )
    assert p95(delays) <= P95_BOUND_S, sorted(delays)
    runner = live.service.runner
    assert runner.speech.synthesis is not None
    assert runner.speech.synthesis.synthesized == 2  # the greeting's two sentences, once for all
