"""What filling the gaps in callers' audio costs: ``GapWatch`` visiting N caller streams.

Every call's caller stream is visited once per 20 ms by the event loop's one ``GapWatch``
(``media/gap_filler.py``); nothing is added per frame. Measured here on a real event loop, for
each N, over ``--window`` seconds, in two cases:

* **talking**: every stream receives a frame each 20 ms (a driver of its own increments the
  streams' counters; its cost is not counted): each visit only sees that frames came;
* **silent**: no stream receives anything: each visit fills one silence frame into a
  consumer that does nothing (the dialogue's own cost of a frame is not this module's).

Reported: the watch's time inside its ticks over the window (its share of a core), that per
call, and per visit. Loopback-free, in-process; no PBX needed.

Usage: .venv/bin/python bench/gap_filler.py [--steps 150,500,1000] [--window 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
from pathlib import Path

from voicedock.media.gap_filler import GapFiller, GapWatch

SILENCE = b"\xff" * 160


class Stream:
    def __init__(self) -> None:
        self.received = 0
        self.filler = GapFiller(self.fill, SILENCE, self.count, period=0.020)

    def count(self) -> int:
        return self.received

    def fill(self, frame: bytes) -> None:
        pass


async def measure(n: int, window: float, talking: bool) -> tuple[float, int, int]:
    """(share of a core inside the watch's ticks, ticks, visits) for ``n`` streams."""
    watch = GapWatch.shared()
    streams = [Stream() for _ in range(n)]
    loop = asyncio.get_running_loop()
    handle: asyncio.TimerHandle | None = None

    def drive() -> None:
        nonlocal handle
        for stream in streams:
            stream.received += 1
        handle = loop.call_later(0.020, drive)

    with contextlib.ExitStack() as listening:
        for stream in streams:
            listening.enter_context(stream.filler.listening())
        if talking:
            drive()
        await asyncio.sleep(0.5)  # settle: the silent streams are in their gaps
        stats = watch.stats
        busy, ticks, visits = stats.busy_seconds, stats.ticks, stats.visits
        await asyncio.sleep(window)
        busy = stats.busy_seconds - busy
        ticks, visits = stats.ticks - ticks, stats.visits - visits
        if handle is not None:
            handle.cancel()
    assert watch.streams == 0
    return busy / window, ticks, visits


async def main(steps: list[int], window: float) -> str:
    rows = []
    for n in steps:
        for talking in (True, False):
            share, ticks, visits = await measure(n, window, talking)
            rows.append(
                f"| {n} | {'talking' if talking else 'silent'} | {share * 100:.3f} % | "
                f"{share / n * 1e6:.2f} µs/s | {share * window / visits * 1e6:.2f} µs | {ticks} |"
            )
    head = (
        f"# Gap filler: one watch visiting N caller streams ({dt.date.today()})\n\n"
        f"`bench/gap_filler.py --steps {','.join(map(str, steps))} --window {window:g}`, "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        "asyncio; load average at the end (other work shares the machine): "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}.\n\n"
        "| calls | callers | watch's share of a core | per call (CPU per second) | "
        "per visit | ticks |\n|---|---|---|---|---|---|\n"
    )
    return head + "\n".join(rows) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="150,500,1000")
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    table = asyncio.run(main([int(s) for s in args.steps.split(",")], args.window))
    print(table)
    if args.out is not None:
        args.out.write_text(table)
