"""Do normal calls' media ticks stay on time while a hostile structured-data check runs?

N media sessions (``media_sessions.py``'s voicedock step: ``MediaSession``s on the process's
``MediaClock``, VAD on every inbound frame, 50 frames/s back, against ``media_load.py``'s
generator in its own process on its own core) are measured in three modes, alternating round
after round in one run:

* **baseline**: nothing else runs in the media process;
* **process pool** (voicedock now): the node's ``SchemaChecks`` (the product's defaults: two
  worker processes, 2 s deadline) kept busy by two hostile organizations, each submitting a
  check that every schema limit accepts and that still takes minutes (5,500 values each
  compared with an enum of 1,000 objects, through 32 references to it), killed at the deadline
  and replaced, again and again; and a
  third organization's ordinary check every 200 ms, whose verdicts are counted;
* **threads** (voicedock before): the old design, two threads of the media process running
  ``jsonschema.validate`` of the issue's recursive 174-byte schema on a 14-level nested answer
  (~2 s each), submitted as fast as the old code's 2 s timeout gave up on them.

Per mode: the lateness of the media clock's ticks (when each 2 ms slot's tick ran minus its
deadline: what a stalled interpreter delays first), p50/p99/max; the frames' output lateness
(written minus due; negative: written ahead, as voicedock does) p99 and max; frames lost both
ways; the media process's CPU; and what the hostile load did (checks killed at the deadline,
thread jobs run). The worker processes inherit the media process's core pinning: they compete
for the very core the media runs on (the harshest case; unpinned they would use any core).

The result holds when the process pool's tick p99 is within 2 ms of the baseline's in the same
run. Writes ``bench/results/schema_checks-<date>.md``.

Usage: .venv/bin/python bench/schema_checks.py [--n 100] [--window 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import logging
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))

from media_load import generator_main, new_loop, pin  # noqa: E402
from media_sessions import voicedock_step  # noqa: E402

from fakes.hostile_schemas import (  # noqa: E402
    RECURSIVE,
    SLOW_ANSWER,
    SLOW_SCHEMA,
    analysis_answer,
    nested,
)
from voicedock.pbx.asterisk.media.clock import MediaClock  # noqa: E402
from voicedock.pipeline.analysis.schema_checks import SchemaChecks  # noqa: E402

MODES = ("baseline", "process pool", "threads")
DAY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"day": {"type": "string"}}}
# The model's answers as analysis receives them (JSON text).
SLOW_TEXT = analysis_answer(SLOW_ANSWER)
DAY_TEXT = analysis_answer({"day": "Monday"})
Result = dict[str, Any]


class TickLateness:
    """Records how late each tick of the loop's ``MediaClock`` runs, while ``recording``."""

    def __init__(self, clock: MediaClock) -> None:
        self.values: list[float] = []
        self.recording = False
        inner = clock.tick

        def tick(slot: int, deadline: float) -> None:
            if self.recording:
                self.values.append(time.monotonic() - deadline)
            inner(slot, deadline)

        clock.tick = tick  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def hostile_pool(load: collections.Counter[str]) -> AsyncIterator[None]:
    """The node's schema workers kept busy by two hostile organizations, one ordinary one."""
    checks = SchemaChecks()

    async def hostile(organization: str) -> None:
        while True:
            verdict = await checks.check(organization, SLOW_SCHEMA, SLOW_TEXT)
            load[f"hostile: {verdict}"] += 1

    async def ordinary() -> None:
        while True:
            verdict = await checks.check("ordinary", DAY_SCHEMA, DAY_TEXT)
            load[f"ordinary: {verdict or 'matched'}"] += 1
            await asyncio.sleep(0.2)

    assert await checks.check("ordinary", DAY_SCHEMA, DAY_TEXT) is None
    for _ in range(1200):  # both workers warm (a minute at most)
        if len(checks.worker_pids()) >= checks.workers:
            break
        await asyncio.sleep(0.05)
    tasks = [
        asyncio.create_task(hostile("evil-1")),
        asyncio.create_task(hostile("evil-2")),
        asyncio.create_task(ordinary()),
    ]
    try:
        await asyncio.sleep(1.0)  # the slow checks under way
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        load["killed at the deadline"] += checks.stats.timed_out
        load["workers started"] += checks.stats.started
        await checks.aclose()


@contextlib.asynccontextmanager
async def hostile_threads(load: collections.Counter[str]) -> AsyncIterator[None]:
    """The old design: two threads validating the recursive schema, given up on after 2 s."""
    pool = ThreadPoolExecutor(2, thread_name_prefix="voicedock-schema")
    loop = asyncio.get_running_loop()
    answer = {"x": nested(14)}

    def validate() -> None:
        with contextlib.suppress(jsonschema.ValidationError):
            jsonschema.validate(answer, RECURSIVE)
        load["thread jobs run"] += 1

    async def submit() -> None:
        while True:
            job = loop.run_in_executor(pool, validate)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(job), 2.0)

    tasks = [asyncio.create_task(submit()), asyncio.create_task(submit())]
    try:
        await asyncio.sleep(1.0)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


async def measure(
    port: int, conn: Connection, n: int, window: float, sid: str, mode: str
) -> Result:
    ticks = TickLateness(MediaClock.shared())
    load: collections.Counter[str] = collections.Counter()
    hostile: dict[str, Callable[[collections.Counter[str]], Any]] = {
        "process pool": hostile_pool,
        "threads": hostile_threads,
    }

    @contextlib.asynccontextmanager
    async def around() -> AsyncIterator[None]:
        during = hostile[mode](load) if mode in hostile else contextlib.nullcontext()
        async with during:
            ticks.recording = True
            try:
                yield
            finally:
                ticks.recording = False

    result = await voicedock_step(port, conn, n, window, sid, around)
    late = np.array(ticks.values)
    result.update(
        mode=mode,
        tick_p50_ms=float(np.percentile(late, 50) * 1000),
        tick_p99_ms=float(np.percentile(late, 99) * 1000),
        tick_max_ms=float(late.max() * 1000),
        ticks=len(late),
        tick_values=late,
        load=dict(load),
    )
    return result


def run(args: argparse.Namespace) -> tuple[list[Result], dict[str, str]]:
    media_cores = pin(args.media_core if args.media_core >= 0 else None)
    parent, child = mp.Pipe()
    generator = mp.get_context("spawn").Process(
        target=generator_main,
        args=(child, args.generator_core if args.generator_core >= 0 else None, "uvloop"),
    )
    generator.start()
    rows: list[Result] = []
    try:
        port, generator_cores = parent.recv()
        for round_ in range(args.rounds):
            for mode in MODES:
                with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
                    sid = f"s{round_}{MODES.index(mode)}"
                    r = runner.run(measure(port, parent, args.n, args.window, sid, mode))
                r["round"] = round_ + 1
                rows.append(r)
                print(
                    f"round {round_ + 1} {mode:<13} tick p50={r['tick_p50_ms']:.2f} "
                    f"p99={r['tick_p99_ms']:.2f} max={r['tick_max_ms']:.1f} ms; frames p99="
                    f"{r['p99_ms']:.2f} max={r['max_ms']:.1f} ms lost {r['lost_out']}/"
                    f"{r['lost_in']} cpu={r['cpu']:.0%} load={r['load']}",
                    flush=True,
                )
    finally:
        parent.send("stop")
        generator.join(5)
        if generator.is_alive():
            generator.terminate()
    _ = new_loop  # the media side runs asyncio's loop, as the service does by default
    return rows, {"media": media_cores, "generator": generator_cores}


def pooled(rows: list[Result], mode: str) -> np.ndarray:
    return np.concatenate([r["tick_values"] for r in rows if r["mode"] == mode])


def write_report(rows: list[Result], cores: dict[str, str], args: argparse.Namespace) -> Path:
    now = dt.datetime.now(dt.UTC)
    out = (
        Path(args.report) if args.report else ROOT / "results" / f"schema_checks-{now:%Y-%m-%d}.md"
    )
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    summary = {mode: pooled(rows, mode) for mode in MODES}
    p99 = {mode: float(np.percentile(v, 99) * 1000) for mode, v in summary.items()}
    verdict = p99["process pool"] - p99["baseline"]
    lines = [
        f"# schema_checks benchmark, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs / "
        f"{platform.processor() or platform.machine()}",
        f"- python {platform.python_version()}, asyncio, {args.n} µ-law media sessions (webrtcvad "
        f"on every inbound frame), window {args.window:.0f} s per mode, {args.rounds} rounds "
        "alternating the modes",
        f"- media process (and the schema workers it starts) on core(s) {cores['media']}; load "
        f"generator (bench/media_load.py, uvloop) in its own process on core(s) "
        f"{cores['generator']}",
        f"- code: {commit}",
        f"- command: `{' '.join(sys.argv)}`",
        f"- load average at the end (the machine is shared): "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
        "Media tick lateness over all rounds (every tick of the clock's 2 ms slots):",
        "",
        "| mode | ticks | p50 ms | p99 ms | max ms | p99 - baseline p99 |",
        "|---|---|---|---|---|---|",
    ]
    for mode, values in summary.items():
        lines.append(
            f"| {mode} | {len(values)} | {np.percentile(values, 50) * 1000:.2f} | "
            f"{p99[mode]:.2f} | {values.max() * 1000:.1f} | {p99[mode] - p99['baseline']:+.2f} |"
        )
    lines += [
        "",
        f"Process pool p99 - baseline p99: **{verdict:+.2f} ms** "
        f"({'within' if verdict <= 2.0 else 'NOT within'} 2 ms).",
        "",
        "Per round:",
        "",
        "| round | mode | tick p50 ms | tick p99 ms | tick max ms | frame p99 ms | frame max ms "
        "| lost out/in | media CPU | hostile load in the window |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        load = ", ".join(f"{k}: {v}" for k, v in sorted(r["load"].items())) or "-"
        lines.append(
            f"| {r['round']} | {r['mode']} | {r['tick_p50_ms']:.2f} | {r['tick_p99_ms']:.2f} | "
            f"{r['tick_max_ms']:.1f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | "
            f"{r['lost_out']}/{r['lost_in']} | {r['cpu']:.0%} | {load} |"
        )
    out.write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100, help="media sessions (normal calls)")
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--media-core", type=int, default=0, help="-1: not pinned")
    parser.add_argument(
        "--generator-core",
        type=int,
        default=1 if (os.cpu_count() or 1) > 1 else 0,
        help="-1: not pinned",
    )
    parser.add_argument("--report", default="", help="report path (default: results/<date>.md)")
    parser.add_argument("--no-report", action="store_true")
    cli = parser.parse_args()
    # Each hostile check killed at the deadline is a warning line: the bench kills dozens.
    logging.getLogger("voicedock.pipeline.analysis.schema_checks").setLevel(logging.ERROR)
    results, used_cores = run(cli)
    if results and not cli.no_report:
        print(f"report: {write_report(results, used_cores, cli)}")
