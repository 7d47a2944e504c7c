"""What a fallback plan's switch costs the caller: from the moment the assistant's model fails
to the caller hearing the next entry's first audio, beside turns where nothing fails.

A call's engine as the service builds it (``build_providers`` from an
assistant whose ``llm_config`` has a ``fallback_plan``) runs a ``LiveConversation`` over a real
``MediaSession`` against the in-process chan_websocket endpoint of the tests
(``tests/media/fake_asterisk.py``, which notes when each frame is played to the caller). The
providers are stand-ins over HTTP on loopback (``tests/fakes``): OpenAI speech for STT and TTS
(answering at once), and two OpenAI-compatible models, the plan's primary and its backup. The
caller says one sentence (Piper, 8 kHz µ-law in real time) per turn, and per turn the primary:

* baseline: answers;
* error: answers 500 (an immediate failure);
* hang: takes the request and never sends a token (the first-token deadline);
* stall: sends two words ("Sure, we"), then nothing (the stall limit midway; nothing of the
  reply was whole yet, so the backup answers it all);
* slow: answers, its first token 2 s after the request (a slow model, not a failing one);
* slow, slow backup: the same, and the backup's first token 1.5 s after its request.

Each turn's clock starts when the primary received the request (the failure, or where one
would have been) and stops at the first loud frame played to the caller; the backup's request
arrival splits it into detection and the backup's own path. The two models answer different
words, so the transcript says which one served the turn; the failures the primary's breaker
counted for the turn are read once its request must have settled (its first token, or
``llm_first_token_timeout_s`` after it was sent for a hang). Every call has its own breakers
with no limit (the bench measures the switch, not the breaker's skipping). The scenarios take
turns in every call, so a change of the machine's load falls on all of them. The PBX's jitter
buffer and the network are not included.

    .venv/bin/python bench/fallback_switch.py [--turns 20] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import datetime as dt
import os
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "media"))
sys.path.insert(0, str(ROOT / "bench"))

from fake_asterisk import FakeAsterisk, FakeChannel  # noqa: E402
from voice_to_voice import phone_line  # noqa: E402

from fakes.llm_standin import ChatRequest, LlmStandIn  # noqa: E402
from fakes.speech_standin import SpeechStandIn  # noqa: E402
from voicedock.calls.live.conversation import LiveConversation  # noqa: E402
from voicedock.calls.live.providers import build_providers  # noqa: E402
from voicedock.domain.assistant_config import config_of  # noqa: E402
from voicedock.media.codecs import ulaw_decode  # noqa: E402
from voicedock.pbx.asterisk.media.session import MediaSession  # noqa: E402
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig  # noqa: E402
from voicedock.pipeline.frames import TranscriptEntry  # noqa: E402
from voicedock.pipeline.hearing.endpointing import EndpointingConfig  # noqa: E402
from voicedock.pipeline.pools.provider_health import ProviderHealth  # noqa: E402

SENTENCE = "What time are you open tomorrow?"
REPLY = "Sure, we are open from nine to five."  # the primary's
BACKUP_REPLY = "Yes, we open at nine and close at five."
ANALYSIS = '{"summary": "The caller asked when the shop opens.", "sentiment": 7}'
KEY = "sk-bench"
FRAME = 160  # 20 ms of 8 kHz µ-law
SILENCE = b"\xff" * FRAME
LOUD = 500.0  # RMS of a frame the caller hears as the voice (the tone is ~4000)
QUIET_S = 0.4  # nothing played this long: the previous reply is over

SLOW_S, SLOW_BACKUP_S = 2.0, 1.5  # the slow scenarios' first tokens


def slow(primary: LlmStandIn, backup: LlmStandIn, backup_s: float = 0.0) -> None:
    primary.delay_s, backup.delay_s = SLOW_S, backup_s


# name: what the primary (and the backup) do with the turn's request
SCENARIOS: dict[str, Callable[[LlmStandIn, LlmStandIn], None]] = {
    "baseline": lambda primary, backup: None,
    "error": lambda primary, backup: primary.fail_next(500),
    "hang": lambda primary, backup: setattr(primary, "hang_after_words", 0),
    "stall": lambda primary, backup: setattr(primary, "hang_after_words", 2),
    "slow": slow,
    "slow, slow backup": lambda primary, backup: slow(primary, backup, SLOW_BACKUP_S),
}


# How long after its request the primary's request has settled, where it may be read on
# after the turn (an outrun model: its first token, or its first-token deadline).
SETTLED_S = {
    "hang": ConversationConfig().llm_first_token_timeout_s + 0.3,
    "slow": SLOW_S + 0.3,
    "slow, slow backup": SLOW_S + 0.3,
}


def as_usual(primary: LlmStandIn, backup: LlmStandIn) -> None:
    primary.hang_after_words = None
    primary.delay_s = backup.delay_s = 0.0


@dataclasses.dataclass(slots=True)
class Turn:
    scenario: str
    heard_s: float  # the primary's request → the first loud frame played to the caller
    asked_s: float | None  # the primary's request → the backup's (None: not asked)
    by_primary: bool  # the primary's words were said (else the backup's)
    primary_failures: int  # failures the primary's breaker counted for the turn


class Line:
    """The caller's side of the media: a frame every 20 ms, silence unless speaking."""

    def __init__(self, channel: FakeChannel) -> None:
        self._channel = channel
        self._frames: collections.deque[bytes] = collections.deque()

    def say(self, audio: bytes) -> None:
        frames = (audio[i : i + FRAME] for i in range(0, len(audio), FRAME))
        self._frames.extend(frame.ljust(FRAME, b"\xff") for frame in frames)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self._channel.ws.closed:
            frame = self._frames.popleft() if self._frames else SILENCE
            await self._channel.ws.send_bytes(frame)
            due += 0.02
            await asyncio.sleep(max(0.0, due - loop.time()))


def loud(frame: bytes) -> bool:
    return float(np.sqrt(np.mean(ulaw_decode(frame).astype(np.float64) ** 2))) > LOUD


class Ear:
    """What the caller heard: when each loud frame was played (read as frames are played)."""

    def __init__(self, channel: FakeChannel) -> None:
        self._channel = channel
        self._read = 0
        self.loud_at: list[float] = []

    def _listen(self) -> None:
        played, at = self._channel.played, self._channel.played_at
        for index in range(self._read, len(played)):
            if loud(played[index]):
                self.loud_at.append(at[index])
        self._read = len(played)

    async def first_after(self, since: float) -> float:
        """When the first loud frame was played after ``since``."""
        async with asyncio.timeout(30):
            while True:
                self._listen()
                found = next((at for at in self.loud_at if at >= since), None)
                if found is not None:
                    return found
                await asyncio.sleep(0.02)

    async def quiet(self) -> None:
        """Until the caller heard the last of what was said."""
        loop = asyncio.get_running_loop()
        while True:
            self._listen()
            last = self.loud_at[-1] if self.loud_at else None
            queued = [f for f in self._channel.queue if isinstance(f, bytes)]
            if (last is None or loop.time() - last > QUIET_S) and not any(map(loud, queued)):
                return
            await asyncio.sleep(0.05)


def answering(reply: str) -> Callable[[ChatRequest], str]:
    """A model's reply, or the JSON the end-of-call analysis asks for."""
    return lambda request: ANALYSIS if "sentiment" in (request.system_prompt or "") else reply


def assistant(speech: SpeechStandIn, primary: LlmStandIn, backup: LlmStandIn) -> dict[str, Any]:
    cloud = {"provider": "openai", "base_url": speech.base_url, "api_key": KEY}
    model = {"provider": "openai-compatible", "api_key": KEY}
    return {
        "first_message": "Hello.",
        "stt_config": {**cloud, "model": "whisper-1"},
        "tts_config": {**cloud, "voice": "alloy"},
        "llm_config": {
            **model,
            "base_url": primary.base_url,
            "model": "primary",
            "fallback_plan": [{**model, "base_url": backup.base_url, "model": "backup"}],
        },
    }


async def one_call(
    scenarios: list[str], caller: bytes, stand_ins: tuple[SpeechStandIn, LlmStandIn, LlmStandIn]
) -> list[Turn]:
    speech, primary, backup = stand_ins
    config = config_of(assistant(speech, primary, backup))
    no_limit = ProviderHealth(failures_to_open=1 << 30)
    providers = await build_providers(config, health=no_limit)
    dialogue = ConversationConfig(
        endpointing=EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None)
    )

    def primary_failures() -> int:
        counts = no_limit.counts()
        return sum(c.failures for e, c in counts.items() if e.model == "primary")

    turns: list[Turn] = []
    said: asyncio.Queue[TranscriptEntry] = asyncio.Queue()

    async def replied(entry: TranscriptEntry) -> None:
        if entry.role == "assistant":
            said.put_nowait(entry)

    try:
        async with (
            FakeAsterisk(send_audio=False) as fake,
            MediaSession.connect(fake.url()) as media,
            LiveConversation(
                media, config, providers=providers, config=dialogue, on_transcript=replied
            ) as live,
        ):
            channel = fake.channel()
            line, ear = Line(channel), Ear(channel)
            talking = asyncio.create_task(line.run())
            try:
                await asyncio.wait_for(said.get(), 10)  # the greeting
                loop = asyncio.get_running_loop()
                for scenario in scenarios:
                    await ear.quiet()
                    asked, answered = len(primary.requests), len(backup.requests)
                    failures = primary_failures()
                    SCENARIOS[scenario](primary, backup)
                    line.say(caller)
                    reply = await asyncio.wait_for(said.get(), 60)
                    as_usual(primary, backup)
                    failed_at = primary.requests[asked].at
                    heard = await ear.first_after(failed_at)
                    took_over = (
                        backup.requests[answered].at - failed_at
                        if len(backup.requests) > answered
                        else None
                    )
                    settled = failed_at + SETTLED_S.get(scenario, 0.0)
                    await asyncio.sleep(max(0.0, settled - loop.time()))
                    turns.append(
                        Turn(
                            scenario,
                            heard - failed_at,
                            took_over,
                            reply.content == REPLY,
                            primary_failures() - failures,
                        )
                    )
                await ear.quiet()
                await live.end_call(None)
                await asyncio.wait_for(live.wait_ended(), 30)
            finally:
                talking.cancel()
                await asyncio.gather(talking, return_exceptions=True)
    finally:
        await providers.aclose()
    return turns


async def run(turns: int) -> list[Turn]:
    caller = await phone_line(SENTENCE)
    names = list(SCENARIOS)
    found: list[Turn] = []
    async with (
        SpeechStandIn(transcript=SENTENCE) as speech,
        LlmStandIn(reply=answering(REPLY)) as primary,
        LlmStandIn(reply=answering(BACKUP_REPLY)) as backup,
    ):
        for block in range(turns):
            order = names[block % len(names) :] + names[: block % len(names)]
            found += await one_call(order, caller, (speech, primary, backup))
            print(f"block {block + 1}/{turns} done", file=sys.stderr)
    return found


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


TARGETS_MS = {"error": 300.0, "hang": 1500.0, "stall": 1500.0, "slow": 1500.0}


def report(found: list[Turn], command: str, loads: tuple[float, float]) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    defaults = ConversationConfig()
    out = [
        f"# Fallback switch: failure → the caller hears the next entry — {now}",
        "",
        f"Machine: {platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average (1 min) {loads[0]:.2f} at the "
        f"start, {loads[1]:.2f} at the end (the machine is shared).",
        f"Command: `{command}`",
        f"Turns: {len(found) // len(SCENARIOS)} per scenario, one call per block of "
        f"{len(SCENARIOS)} (each scenario once, order rotating). The product's dialogue "
        f"defaults: a model alone gives its first token within "
        f"{defaults.llm_first_token_timeout_s:g} s; `llm_takeover_s` is "
        f"{defaults.llm_takeover_s:g} s (a plan's model silent that long before its first "
        "token: raced by the next model since the hedge, left before it; midway: left). "
        "Stand-ins answer at once unless the scenario says (loopback HTTP); "
        "in-process chan_websocket endpoint, frames played at 20 ms.",
        "Times in ms from the primary receiving the turn's request. heard: the caller's first "
        "loud frame; backup asked: the backup's request arrives (detection); backup's path: "
        "heard minus that. served by the primary: its words were said; primary failures: "
        "those its breaker counted, per turn.",
        "",
        "| scenario | heard p50 | heard p95 | heard max | backup asked p50 | backup's path p50 "
        "| cost over baseline p50 | target p95 | served by the primary | primary failures |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    by = {name: [t for t in found if t.scenario == name] for name in SCENARIOS}
    base = statistics.median(t.heard_s for t in by["baseline"]) * 1000
    for name, turns in by.items():
        heard = [t.heard_s * 1000 for t in turns]
        asked = [t.asked_s * 1000 for t in turns if t.asked_s is not None]
        path = [(t.heard_s - t.asked_s) * 1000 for t in turns if t.asked_s is not None]
        target = TARGETS_MS.get(name)
        verdict = (
            ""
            if target is None
            else (f"{target:.0f} ({'met' if _pct(heard, 0.95) <= target else 'NOT met'})")
        )
        cells = [
            f"{statistics.median(heard):.0f}",
            f"{_pct(heard, 0.95):.0f}",
            f"{max(heard):.0f}",
            f"{statistics.median(asked):.0f}" if asked else "–",
            f"{statistics.median(path):.0f}" if path else "–",
            f"{statistics.median(heard) - base:+.0f}" if name != "baseline" else "–",
            verdict or "–",
            f"{sum(t.by_primary for t in turns)}/{len(turns)}",
            f"{sum(t.primary_failures for t in turns)}/{len(turns)}",
        ]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20, help="turns per scenario")
    parser.add_argument("--write", action="store_true", help="write bench/results/…md")
    args = parser.parse_args()
    start_load = os.getloadavg()[0]
    found = asyncio.run(run(args.turns))
    command = " ".join([".venv/bin/python", *sys.argv])
    text = report(found, command, (start_load, os.getloadavg()[0]))
    print(text)
    if args.write:
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        path = ROOT / "bench" / "results" / f"fallback_switch-{day}.md"
        path.write_text(text)
        print(f"written: {path}")


if __name__ == "__main__":
    main()
