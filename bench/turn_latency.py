"""Turn latency of the speech pipeline itself, with instant fake providers.

Measures, over many turns, the time from the endpointing decision (the caller's silence
window elapsed) to the first assistant audio frame handed to the output sink, plus the cost
of `TurnEngine.feed_audio` per 20 ms frame. Providers answer instantly, so this is the
engine's own overhead (target: p95 <= 20 ms).

    .venv/bin/python bench/turn_latency.py [--turns 300] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np

from voicedock.pipeline.audio import float_to_pcm16
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig, TurnEngine
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.hearing.endpointing import EndpointingConfig

RATE = 8000
FRAME = RATE * 20 // 1000 * 2


class InstantStt:
    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        return "What time do you open tomorrow?"

    async def aclose(self) -> None:
        return None


class InstantLlm:
    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        for chunk in ("We open ", "at nine. ", "Anything else?"):
            yield chunk

    async def aclose(self) -> None:
        return None


class InstantTts:
    sample_rate = RATE

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        yield b"\x00\x01" * (RATE // 2)

    async def aclose(self) -> None:
        return None


class InstantHandle:
    duration_ms = 500.0

    async def started(self) -> None:
        return None

    async def played(self) -> None:
        return None

    async def flush(self) -> float:
        return self.duration_ms


class InstantSink:
    async def play(self, pcm: bytes, sample_rate: int) -> InstantHandle:
        return InstantHandle()


def voiced(ms: int) -> bytes:
    t = np.arange(RATE * ms // 1000) / RATE
    phase = np.cumsum(2 * np.pi * (120 + 20 * np.sin(2 * np.pi * 3 * t)) / RATE)
    return float_to_pcm16(0.3 * (((phase / (2 * np.pi)) % 1.0) * 2 - 1))


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


async def run(turns: int) -> tuple[list[float], list[float]]:
    cfg = ConversationConfig(
        sample_rate=RATE,
        endpointing=EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None),
    )
    speech = voiced(600)
    silence = b"\x00\x00" * (RATE * 800 // 1000)
    turn_audio = [c[i : i + FRAME] for c in (speech, silence) for i in range(0, len(c), FRAME)]
    frame_costs: list[float] = []
    conv = TurnEngine(
        stt=InstantStt(), llm=InstantLlm(), tts=InstantTts(), sink=InstantSink(), config=cfg
    )
    async with conv:
        for n in range(turns):
            for frame in turn_audio:
                start = time.perf_counter()
                conv.feed_audio(frame)
                frame_costs.append((time.perf_counter() - start) * 1e6)
                await asyncio.sleep(0)  # let the engine run between frames, as on a live call
            for _ in range(100_000):  # bounded wait for this turn's answer
                if len(conv.latencies) > n:
                    break
                await asyncio.sleep(0)
            else:
                raise RuntimeError(f"turn {n} got no answer")
    first_frame = [lat.first_frame_sent_ms or 0.0 for lat in conv.latencies]
    return first_frame, frame_costs


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--write", action="store_true", help="write bench/results/…md")
    args = parser.parse_args()
    latencies, frame_costs = asyncio.run(run(args.turns))
    now = dt.datetime.now(dt.UTC)
    report = "\n".join(
        [
            f"# Turn latency — {now:%Y-%m-%d %H:%M} UTC",
            "",
            f"Machine: {machine()}",
            f"Turns: {len(latencies)} (instant fake STT/LLM/TTS/sink, 8 kHz, 20 ms frames)",
            "",
            "| measure | p50 | p95 | max |",
            "|---|---|---|---|",
            f"| endpointing decision → first TTS frame sent (ms) | {percentile(latencies, 50):.3f} "
            f"| {percentile(latencies, 95):.3f} | {max(latencies):.3f} |",
            f"| feed_audio per 20 ms frame (µs) | {percentile(frame_costs, 50):.1f} "
            f"| {percentile(frame_costs, 95):.1f} | {max(frame_costs):.1f} |",
            "",
            f"Target p95 <= 20 ms: {'met' if percentile(latencies, 95) <= 20 else 'NOT met'}. "
            f"Mean first frame {statistics.fmean(latencies):.3f} ms.",
            "",
        ]
    )
    print(report)
    if args.write:
        out = Path(__file__).parent / "results" / f"turn_latency-{now:%Y-%m-%d}.md"
        out.write_text(report)
        print(f"written to {out}")


if __name__ == "__main__":
    main()
