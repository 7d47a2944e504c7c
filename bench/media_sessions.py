"""How many concurrent media sessions fit on one core, next to the floor on the same machine?

One run measures, for each N and each event loop asked for, side by side against the same load
generator (bench/media_load.py, in its own process pinned to its own core: raw asyncio
protocols, one 20 ms clock, 50 inbound frames/s per call, playout with marks):

* **voicedock**: N ``MediaSession``s (µ-law, server mode) on the process's shared
  ``MediaClock`` (which writes each session's audio ahead, see docs/performance/media.md);
  each decodes and runs webrtcvad on every inbound frame, streams 50 frames/s
  back (silence, plus a 2 s utterance encoded from PCM every 5 s, with its marks; the calls'
  utterances start at staggered moments);
* **reference**: the floor: N bare websocket connections doing µ-law decode + webrtcvad in,
  µ-law encode of a fresh frame + a paced send out, on one clock. Nothing else.

For each: p50/p99/max output lateness (when a frame was written minus its due time on the
20 ms schedule; negative when written ahead, as voicedock does), frames lost both ways
(generator-sent vs received, after a drain), CPU of the media process (process time / wall
time over the window) per session, and the generator's own CPU. The media process
is pinned to ``--media-core``. sessions/core (by CPU) = 1 / CPU per session; the largest N with
p99 <= 5 ms and nothing lost is the real-time result. Loopback only.

Usage: .venv/bin/python bench/media_sessions.py [--steps 250,500,750,1000]
       [--window 6] [--loops asyncio,uvloop] [--generator-loop uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from media_load import (  # noqa: E402
    ReferenceClock,
    ReferenceConnection,
    Ticker,
    core_times,
    generator_main,
    new_loop,
    open_reference,
    pin,
)

from voicedock.domain.audio import format_by_name  # noqa: E402
from voicedock.media.codecs import encode, ulaw_decode  # noqa: E402
from voicedock.pbx.asterisk.media.clock import MediaClock  # noqa: E402
from voicedock.pbx.asterisk.media.session import MediaSession  # noqa: E402

try:
    import webrtcvad
except ImportError:  # pragma: no cover
    webrtcvad = None

ULAW = format_by_name("ulaw")
Result = dict[str, Any]


class Call:
    def __init__(self, index: int) -> None:
        self.index = index
        self.vad = webrtcvad.Vad(2) if webrtcvad else None
        self.speech_frames = 0
        self.session: MediaSession | None = None

    def on_audio(self, frame: bytes) -> None:
        pcm = ulaw_decode(frame).tobytes()
        if self.vad is not None and self.vad.is_speech(pcm, 8000):
            self.speech_frames += 1

    async def run(self, url: str, stop: asyncio.Event, ready: asyncio.Event, offset: float) -> None:
        """``offset``: the calls start speaking at different moments, as real calls do."""
        assert ULAW is not None
        t = np.arange(16000) / 8000
        pcm = (6000 * np.sin(2 * np.pi * 220 * t)).astype("<i2")  # 2 s of "speech"
        async with MediaSession.connect(url, on_audio=self.on_audio) as media:
            self.session = media
            ready.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), offset)
            while not stop.is_set() and not media.closed:
                media.play(encode(ULAW, pcm))  # encoded per utterance, as MediaSink does
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 5.0)


def ask(conn: Connection, request: str) -> Any:
    conn.send(request)
    return conn.recv() if request == "stats" else None


MEDIA_CORE = [0]  # the core the media process is pinned to (set in run())


class CoreMeter:
    """How busy the media process's core was over a window (all work on it, kernel included)."""

    def __init__(self) -> None:
        self.start = core_times(MEDIA_CORE[0])

    def busy(self) -> float:
        busy, total = core_times(MEDIA_CORE[0])
        return (busy - self.start[0]) / max(1, total - self.start[1])


async def measured_window(conn: Connection, window: float) -> tuple[float, float]:
    """Let ``window`` seconds pass; the CPU share of this thread (whose event loop runs every
    session: in bench/call_capacity.py, the driver's other threads are not the media's) and its
    core's busy share."""
    ask(conn, "mark")
    meter = CoreMeter()
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    await asyncio.sleep(window)
    return (time.thread_time() - cpu0) / (time.perf_counter() - wall0), meter.busy()


def summarize(
    n: int,
    window: float,
    lateness: np.ndarray,
    cpu: float,
    core: float,
    lost_out: int,
    lost_in: int,
) -> Result:
    per_session = cpu / n
    return {
        "core": core,
        "core_per_session": core / n,
        "n": n,
        "p50_ms": float(np.percentile(lateness, 50) * 1000),
        "p99_ms": float(np.percentile(lateness, 99) * 1000),
        "max_ms": float(lateness.max() * 1000),
        "frames_out": len(lateness),
        "expected_out": int(n * window * 50),
        "lost_out": lost_out,
        "lost_in": lost_in,
        "cpu": cpu,
        "cpu_per_session": per_session,
        "per_core": 1 / per_session if per_session else 0.0,
        "ok": float(np.percentile(lateness, 99)) <= 0.005 and not lost_out and not lost_in,
    }


async def voicedock_step(
    port: int,
    conn: Connection,
    n: int,
    window: float,
    sid: str,
    around: Callable[[], contextlib.AbstractAsyncContextManager[object]] | None = None,
) -> Result:
    """``around``: entered once every session runs, just before the measured window, and left
    after it (what else the process does meanwhile: bench/schema_checks.py)."""
    stop = asyncio.Event()
    calls = [Call(i) for i in range(n)]
    readies = [asyncio.Event() for _ in calls]
    async with asyncio.TaskGroup() as tg:
        for call, ready in zip(calls, readies, strict=True):
            url = f"ws://127.0.0.1:{port}/media/{sid}-{call.index}"
            tg.create_task(call.run(url, stop, ready, 5.0 * call.index / n))
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
        await asyncio.sleep(1.0)  # let start-up settle
        sessions = [c.session for c in calls if c.session is not None]
        before = [s.pacer.stats.frames_sent for s in sessions]
        clock = MediaClock.shared()
        async with around() if around is not None else contextlib.nullcontext():
            busy0 = clock.stats.busy_seconds
            cpu, core = await measured_window(conn, window)
            busy = (clock.stats.busy_seconds - busy0) / window
        lateness = np.concatenate(
            [
                s.pacer.stats.recent_lateness()[-(s.pacer.stats.frames_sent - b) :]
                for s, b in zip(sessions, before, strict=True)
            ]
        )
        ask(conn, "quiet")
        await asyncio.sleep(0.3)  # inbound in flight arrives
        for s in sessions:
            s.pacer.stop()  # no more output; the session then closes its websocket
        await asyncio.sleep(0.5)  # output in flight arrives
        stats, generator_cpu = ask(conn, "stats")
        stop.set()
    lost_out = sum(
        s.pacer.stats.frames_sent - stats.get(f"{sid}-{c.index}", (0, 0))[1]
        for c, s in zip(calls, sessions, strict=True)
    )
    lost_in = sum(
        stats.get(f"{sid}-{c.index}", (0, 0))[0]
        - s.caller.inbound_frames
        + s.caller.inbound_dropped
        for c, s in zip(calls, sessions, strict=True)
    )
    ask(conn, "resume")
    result = summarize(n, window, lateness, cpu, core, int(lost_out), int(lost_in))
    result["clock_busy"] = busy
    result["generator_cpu"] = generator_cpu
    result["speech_frames"] = sum(c.speech_frames for c in calls)
    return result


async def reference_step(port: int, conn: Connection, n: int, window: float, sid: str) -> Result:
    limit = asyncio.Semaphore(100)

    async def open_one(index: int) -> ReferenceConnection:
        async with limit:
            vad = webrtcvad.Vad(2) if webrtcvad else None
            _, protocol = await open_reference(port, f"/media/{sid}-{index}", vad)
            return protocol

    connections = list(await asyncio.gather(*(open_one(i) for i in range(n))))
    clock = ReferenceClock(connections)
    ticker = asyncio.create_task(Ticker(clock.tick).run())
    try:
        await asyncio.sleep(1.0)
        before = [len(c.lateness) for c in connections]
        cpu, core = await measured_window(conn, window)
        lateness = np.array(
            [x for c, b in zip(connections, before, strict=True) for x in c.lateness[b:]]
        )
        ask(conn, "quiet")
        await asyncio.sleep(0.3)
        clock.running = False
        await asyncio.sleep(0.5)
        stats, generator_cpu = ask(conn, "stats")
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        for c in connections:
            if c.transport is not None:
                c.transport.close()
    lost_out = sum(
        c.frames_sent - stats.get(f"{sid}-{i}", (0, 0))[1] for i, c in enumerate(connections)
    )
    lost_in = sum(
        stats.get(f"{sid}-{i}", (0, 0))[0] - c.inbound_frames for i, c in enumerate(connections)
    )
    await asyncio.sleep(0.2)
    ask(conn, "resume")
    result = summarize(n, window, lateness, cpu, core, int(lost_out), int(lost_in))
    result["generator_cpu"] = generator_cpu
    return result


def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    return lambda: new_loop(kind)


def line(label: str, r: Result) -> str:
    return (
        f"{label:<22} N={r['n']:5d} p50={r['p50_ms']:.2f} p99={r['p99_ms']:.2f} "
        f"max={r['max_ms']:.1f} ms lost out/in={r['lost_out']}/{r['lost_in']} "
        f"cpu={r['cpu']:.0%} ({r['cpu_per_session'] * 100:.3f} %/session, "
        f"{r['per_core']:.0f}/core) core busy={r['core']:.0%} gen={r['generator_cpu']:.0%} "
        f"ok={r['ok']}"
    )


def run(args: argparse.Namespace) -> tuple[list[tuple[str, Result]], dict[str, str]]:
    media_cores = pin(args.media_core)
    MEDIA_CORE[0] = args.media_core
    parent, child = mp.Pipe()
    generator = mp.get_context("spawn").Process(
        target=generator_main, args=(child, args.generator_core, args.generator_loop)
    )
    generator.start()
    rows: list[tuple[str, Result]] = []
    started = time.monotonic()
    try:
        port, generator_cores = parent.recv()
        for step, n in enumerate(int(s) for s in args.steps.split(",")):
            if time.monotonic() - started > args.budget:
                print(f"time budget reached before N={n}")
                break
            for kind in args.loops.split(","):
                with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
                    sid = f"v{step}{kind}"
                    r = runner.run(voicedock_step(port, parent, n, args.window, sid))
                rows.append((f"voicedock ({kind})", r))
                print(line(f"voicedock ({kind})", r), flush=True)
                if args.no_reference:
                    continue
                with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
                    r = runner.run(reference_step(port, parent, n, args.window, f"r{step}{kind}"))
                rows.append((f"reference ({kind})", r))
                print(line(f"reference ({kind})", r), flush=True)
    finally:
        parent.send("stop")
        generator.join(5)
        if generator.is_alive():
            generator.terminate()
    return rows, {"media": media_cores, "generator": generator_cores}


def write_report(
    rows: list[tuple[str, Result]], cores: dict[str, str], args: argparse.Namespace
) -> Path:
    now = dt.datetime.now(dt.UTC)
    default = ROOT / "results" / f"media_sessions-{now:%Y-%m-%d}.md"
    out = Path(args.report) if args.report else default
    best: dict[str, int] = {}
    for label, r in rows:
        if r["ok"]:
            best[label] = max(best.get(label, 0), r["n"])
    lines = [
        f"# media_sessions benchmark, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs / "
        f"{platform.processor() or platform.machine()}",
        f"- python {platform.python_version()}, webrtcvad {'on' if webrtcvad else 'off'}, µ-law, "
        f"window {args.window:.0f} s per step",
        f"- media process on core(s) {cores['media']}; load generator (bench/media_load.py, "
        f"{args.generator_loop}) in its own process on core(s) {cores['generator']}",
        f"- command: `{' '.join(sys.argv)}`",
        f"- load average at the end (the machine is shared): "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
        "Largest N with p99 <= 5 ms and nothing lost: "
        + ", ".join(f"{label} **{n}**" for label, n in best.items()),
        "",
        "| run | N | p50 ms | p99 ms | max ms | frames out | expected | lost out | lost in | "
        "process CPU | CPU/session | sessions/core by CPU | media core busy | generator CPU | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['n']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | "
            f"{r['frames_out']} | {r['expected_out']} | {r['lost_out']} | {r['lost_in']} | "
            f"{r['cpu']:.0%} | {r['cpu_per_session'] * 100:.3f} % | {r['per_core']:.0f} | "
            f"{r['core']:.0%} | {r['generator_cpu']:.0%} | {'yes' if r['ok'] else 'no'} |"
        )
    out.write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default="250,500,750,1000")
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--loops", default="asyncio,uvloop", help="event loops of the media side")
    parser.add_argument("--generator-loop", default="uvloop")
    parser.add_argument("--media-core", type=int, default=0)
    parser.add_argument("--generator-core", type=int, default=1 if (os.cpu_count() or 1) > 1 else 0)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds before stopping")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--report", default="", help="report path (default: results/<date>.md)")
    parser.add_argument("--no-report", action="store_true")
    cli = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(16384, hard), hard))
    results, used_cores = run(cli)
    if results and not cli.no_report:
        print(f"report: {write_report(results, used_cores, cli)}")
