"""How many concurrent media sessions fit on one core?

N ``MediaSession``s (ulaw, server mode) run in this process against a load generator in a
separate process that speaks the chan_websocket protocol (tests/media/fake_asterisk.py: 50 frames/s
inbound per call, a 20 ms playout clock for what we send). Each session streams 50 frames/s back
(silence, plus a 2 s utterance every 5 s with marks) and runs webrtcvad on every inbound frame if
it is installed. For growing N we measure, over a steady window:

* p99 / max output-frame lateness (pacer wake-up vs its absolute 20 ms deadline);
* frames lost: generator-received vs pacer-sent, and inbound frames dropped / malformed;
* CPU (process time / wall time of this process) and RSS per session.

The largest N with p99 <= 5 ms and no frame lost is the result. Loopback only; bounded to < 3 min.
Usage: .venv/bin/python bench/media_sessions.py [--steps 50,100,...] [--window 8]
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
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "media"))

from voicedock.media.codecs import ulaw_decode  # noqa: E402
from voicedock.media.session import MediaSession  # noqa: E402

try:
    import webrtcvad
except ImportError:  # pragma: no cover
    webrtcvad = None


def generator_main(conn: Connection) -> None:
    """Load generator process: a fake Asterisk /media endpoint; answers stats requests."""
    from fake_asterisk import FakeAsterisk

    async def serve() -> None:
        async with FakeAsterisk(send_audio=True) as fake:
            conn.send(fake.port)
            loop = asyncio.get_running_loop()
            requests: asyncio.Queue[str] = asyncio.Queue()
            loop.add_reader(conn.fileno(), lambda: requests.put_nowait(conn.recv()))
            while (request := await requests.get()) != "stop":
                if request == "stats":
                    received = {
                        cid: len(ch.played) + ch.queued_frames for cid, ch in fake.channels.items()
                    }
                    conn.send(received)
            loop.remove_reader(conn.fileno())

    asyncio.run(serve())


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Call:
    def __init__(self, index: int) -> None:
        self.index = index
        self.vad = webrtcvad.Vad(2) if webrtcvad else None
        self.speech_frames = 0
        self.session: MediaSession | None = None

    def on_audio(self, frame: bytes) -> None:
        if self.vad is not None:
            pcm = ulaw_decode(frame).tobytes()
            if self.vad.is_speech(pcm, 8000):
                self.speech_frames += 1

    async def run(self, url: str, stop: asyncio.Event, ready: asyncio.Event) -> None:
        async with MediaSession.connect(url, on_audio=self.on_audio) as media:
            self.session = media
            ready.set()
            utterance = bytes(range(256)) * 62 + b"\x10" * 128  # 2 s of ulaw "speech"
            while not stop.is_set():
                media.play(utterance)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 5.0)


async def run_step(port: int, conn: Connection, n: int, window: float, step_id: int) -> dict:
    stop = asyncio.Event()
    calls = [Call(i) for i in range(n)]
    readies = [asyncio.Event() for _ in calls]
    rss_before = rss_bytes()
    async with asyncio.TaskGroup() as tg:
        for call, ready in zip(calls, readies, strict=True):
            url = f"ws://127.0.0.1:{port}/media/s{step_id}-{call.index}"
            tg.create_task(call.run(url, stop, ready))
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
        await asyncio.sleep(1.0)  # let start-up settle
        sessions = [c.session for c in calls if c.session is not None]
        sent_before = [s.pacer.stats.frames_sent for s in sessions]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(window)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        rss_after = rss_bytes()
        lateness = np.concatenate(
            [
                s.pacer.stats.recent_lateness()[-(s.pacer.stats.frames_sent - b) :]
                for s, b in zip(sessions, sent_before, strict=True)
            ]
        )
        stop.set()
        for s in sessions:
            s.pacer.stop()
    await asyncio.sleep(0.5)  # let the generator drain what is in flight
    conn.send("stats")
    received = conn.recv()
    lost_out = sum(
        s.pacer.stats.frames_sent - received.get(f"s{step_id}-{c.index}", 0)
        for c, s in zip(calls, sessions, strict=True)
    )
    lost_in = sum(s.inbound_dropped + s.bad_frames for s in sessions)
    inbound = sum(s.inbound_frames for s in sessions)
    return {
        "n": n,
        "p50_ms": float(np.percentile(lateness, 50) * 1000),
        "p99_ms": float(np.percentile(lateness, 99) * 1000),
        "max_ms": float(lateness.max() * 1000),
        "frames_out": len(lateness),
        "expected_out": int(n * window * 50),
        "lost_out": int(lost_out),
        "lost_in": int(lost_in),
        "inbound": inbound,
        "cpu": (cpu1 - cpu0) / (wall1 - wall0),
        "rss_per_session_kb": (rss_after - rss_before) / n / 1024,
        "speech_frames": sum(c.speech_frames for c in calls),
    }


async def main(steps: list[int], window: float, budget: float) -> list[dict]:
    parent, child = mp.Pipe()
    generator = mp.get_context("spawn").Process(target=generator_main, args=(child,))
    generator.start()
    results: list[dict] = []
    started = time.monotonic()
    try:
        port = parent.recv()
        for step_id, n in enumerate(steps):
            if time.monotonic() - started > budget:
                print(f"time budget reached before N={n}")
                break
            result = await run_step(port, parent, n, window, step_id)
            result["ok"] = (
                result["p99_ms"] <= 5.0 and result["lost_out"] <= 0 and not result["lost_in"]
            )
            results.append(result)
            print(
                f"N={n:4d} p50={result['p50_ms']:.2f} p99={result['p99_ms']:.2f} "
                f"max={result['max_ms']:.1f} ms lost_out={result['lost_out']} "
                f"lost_in={result['lost_in']} cpu={result['cpu']:.0%} "
                f"rss/session={result['rss_per_session_kb']:.0f} KiB ok={result['ok']}",
                flush=True,
            )
            if not result["ok"]:
                break
    finally:
        parent.send("stop")
        generator.join(5)
        if generator.is_alive():
            generator.terminate()
    return results


def write_report(results: list[dict], window: float) -> Path:
    now = dt.datetime.now(dt.UTC)
    passing = [r["n"] for r in results if r["ok"]]
    out = ROOT / "bench" / "results" / f"media_sessions-{now:%Y%m%d-%H%M}.md"
    lines = [
        f"# media_sessions benchmark, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs / "
        f"{platform.processor() or platform.machine()}",
        f"- python {platform.python_version()}, webrtcvad {'on' if webrtcvad else 'off'}, "
        f"ulaw, window {window:.0f} s per step, generator in a separate process (same machine)",
        f"- load average at the end (other work shares this machine): "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- **largest N with p99 lateness <= 5 ms and no frame lost: {max(passing, default=0)}**",
        "",
        "| N | p50 ms | p99 ms | max ms | frames out | expected | lost out | lost in | "
        "CPU (1 core = 100%) | RSS/session KiB | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['n']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | "
            f"{r['frames_out']} | {r['expected_out']} | {r['lost_out']} | {r['lost_in']} | "
            f"{r['cpu']:.0%} | {r['rss_per_session_kb']:.0f} | {'yes' if r['ok'] else 'no'} |"
        )
    out.write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default="50,100,200,300,400,500,600,800")
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--budget", type=float, default=150.0, help="seconds before stopping")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    steps = [int(s) for s in args.steps.split(",")]
    results = asyncio.run(main(steps, args.window, args.budget))
    if results and not args.no_report:
        print(f"report: {write_report(results, args.window)}")
