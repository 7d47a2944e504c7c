"""What live listeners cost a call: the time to feed one 20 ms frame to a call's taps (the
call recording, and the listen fan-out with 0, 1, 3 or 10 listeners), the baseline being the
recording alone, in the same run. Each listener is drained as the websocket's send loop drains
it (everything queued, every 5 frames); one "stalled" listener is never drained and only drops.
Not a test.

    .venv/bin/python bench/listen_fanout.py [--frames 50000] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from voicedock.media.listen_tap import ListenTap
from voicedock.media.recording import CallRecorder

FRAME = 160  # 20 ms at 8 kHz
BACKLOG = 200  # frames: [listen] max_backlog_ms = 2000, both sides


async def run(frames: int, listeners: int, stalled: bool) -> tuple[list[float], int]:
    """µs per frame fed (caller and assistant alternately); frames dropped in all."""
    samples = (np.sin(np.arange(FRAME) / 3) * 8000).astype(np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        recorder = CallRecorder(Path(tmp) / "call.wav", 8000)
        tap = ListenTap(8000)
        drained = [tap.listen(BACKLOG) for _ in range(listeners)]
        if stalled:
            tap.listen(BACKLOG)  # never drained: each frame past its backlog drops its oldest
        costs: list[float] = []
        for i in range(frames):
            t0 = time.perf_counter()
            if i % 2:
                recorder.assistant(samples)
                if tap.active:
                    tap.assistant(samples)
            else:
                recorder.caller(samples)
                if tap.active:
                    tap.caller(samples)
            costs.append((time.perf_counter() - t0) * 1e6)
            if i % 5 == 4:
                for listener in drained:
                    await listener.take()
        await recorder.aclose()
    return costs, tap.dropped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = []
    cases = [
        ("recording only (baseline)", 0, False),
        ("+ 1 listener", 1, False),
        ("+ 3 listeners", 3, False),
        ("+ 10 listeners", 10, False),
        ("+ 1 listener stalled", 0, True),
    ]
    for name, listeners, stalled in cases:
        costs, dropped = asyncio.run(run(args.frames, listeners, stalled))
        ordered = sorted(costs)
        p50, p99 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]
        per_call = sum(costs) / len(costs) * 100 / 1e4  # % of a core: 100 frames/s per call
        rows.append(
            f"| {name} | {p50:.1f} | {p99:.1f} | {max(costs):.0f} | {per_call:.3f} | {dropped} |"
        )
    load = os.getloadavg()[0]
    now = dt.datetime.now(dt.UTC)
    report = "\n".join(
        [
            f"# Listen fan-out cost — {now:%Y-%m-%d %H:%M} UTC",
            "",
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (a shared VM), Python "
            f"{platform.python_version()}, load {load:.2f}",
            f"Command: `.venv/bin/python bench/listen_fanout.py --frames {args.frames}`",
            "Per 20 ms frame at 8 kHz fed to a call's taps (caller and assistant alternately).",
            "",
            "| taps | per frame p50 (µs) | p99 (µs) | max (µs) | % of a core per call | dropped |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    print(report)
    if args.write:
        out = Path(__file__).parent / "results" / f"listen_fanout-{now:%Y-%m-%d}.md"
        out.write_text(report, encoding="utf-8")
        print(f"written: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
