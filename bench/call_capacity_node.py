"""The node under test of bench/call_capacity.py: ``voicedock serve`` with a bench PBX.

    python bench/call_capacity_node.py --config node.toml --media-port P [--core 0] [--workers N]

The same web app and ``Service`` as ``voicedock serve`` (``create_app``, the TOML, the event
loop of ``server.event_loop``), but the PBX adapter is ``BenchPbx``: originating a call answers
it at once (the events a PBX sends: ringing, answered), and the call's media is a real
chan_websocket connection in server mode to ``ws://127.0.0.1:<media port>/media/<call id>``,
the callers' process (bench/call_capacity_load.py), exactly as voicedock dials Asterisk's
``/media/<connection id>``. Hanging up reports the hangup and ends the media leg, as Asterisk
does. So the node does all of a call's work (REST, store, engine, conversation, providers,
webhooks, media) but the PBX's control plane, a few messages per call.

With ``--workers N`` it is ``voicedock serve --workers N``: the supervisor
(``workers/supervisor.py``) of N workers, each this script again as a worker (``api/serve.py``:
the API port shared, its own port ``port + k``), pinned to core ``core + k - 1``, on the one
PostgreSQL database the configuration names.

Bench routes (this process only, not the product; a worker's on its own port): ``POST
/bench/mark`` starts a window, ``GET /bench/window`` ends it (CPU share, RSS, event-loop lag,
output lateness of the window), ``GET /bench/media`` the media counts of every call (frames
in, dropped, sent) and the process's RSS, ``GET /bench/heap`` the objects the garbage collector
tracks (per generation) and those frozen out of its reach.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import resource
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from media_load import pin

from voicedock import cli
from voicedock.api import serve
from voicedock.api.app import create_app
from voicedock.cli import new_event_loop
from voicedock.config import load_settings
from voicedock.config.workers import WorkerPlace, worker_settings
from voicedock.pbx.asterisk.media.session import MediaSession
from voicedock.pbx.base import (
    OriginateRequest,
    PbxEvent,
    PbxEventKind,
    PbxEventSink,
    PbxHealth,
    TransferTarget,
)
from voicedock.service import Service
from voicedock.workers.supervisor import supervise
from voicedock.workers.supervisor import worker_command as supervisor_command


class BenchPbx:
    """A PBX whose calls answer at once and whose media legs are the callers' process."""

    def __init__(self, media_port: int) -> None:
        self.media_port = media_port
        self.sink: PbxEventSink | None = None
        self.live: set[str] = set()
        self.sessions: dict[str, MediaSession] = {}
        self.counts: dict[str, tuple[int, int, int]] = {}  # call: (in, dropped, sent)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, sink: PbxEventSink) -> None:
        self.sink = sink

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def health(self) -> PbxHealth:
        return PbxHealth("bench", {"pbx": True})

    async def live_call_ids(self) -> set[str]:
        return set(self.live)

    def _emit(self, call_id: str, kind: PbxEventKind, cause: int | None = None) -> None:
        async def send() -> None:
            assert self.sink is not None
            await self.sink(PbxEvent(call_id, kind, cause))

        task = asyncio.create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def originate(self, request: OriginateRequest) -> None:
        self.live.add(request.call_id)
        self._emit(request.call_id, PbxEventKind.RINGING)
        self._emit(request.call_id, PbxEventKind.ANSWERED)

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        if call_id in self.live:
            self.live.discard(call_id)
            session = self.sessions.get(call_id)
            if session is not None:
                session.pacer.stop()
            self._emit(call_id, PbxEventKind.HANGUP, 16)

    async def transfer(self, call_id: str, target: TransferTarget) -> None:
        raise NotImplementedError

    @asynccontextmanager
    async def call_media(self, call_id: str, *, media_format: str = "ulaw") -> AsyncIterator[Any]:
        url = f"ws://127.0.0.1:{self.media_port}/media/{call_id}"
        async with MediaSession.connect(url) as media:
            self.sessions[call_id] = media
            try:
                yield media
            finally:
                self.sessions.pop(call_id, None)
                stats = media.pacer.stats
                self.counts[call_id] = (
                    media.caller.inbound_frames,
                    media.caller.inbound_dropped,
                    stats.frames_sent,
                )


class Meter:
    """The window's CPU, event-loop lag, garbage collections and output lateness."""

    def __init__(self, pbx: BenchPbx) -> None:
        self.pbx = pbx
        self.lags: list[float] = []
        self.beat = 0.0
        # (generation, seconds, objects collected) in the window
        self.gc_pauses: list[tuple[int, float, int]] = []
        self._gc_start = 0.0
        self.cpu0 = self.wall0 = 0.0
        self.sent0: dict[str, int] = {}
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            pause = time.perf_counter() - self._gc_start
            self.gc_pauses.append((info["generation"], pause, info["collected"]))

    async def watch_lag(self) -> None:
        while True:
            start = time.perf_counter()
            self.beat = start
            await asyncio.sleep(0.010)
            self.lags.append(time.perf_counter() - start - 0.010)

    def watch_stalls(self, main: int, limit: float) -> None:
        """A thread: the main thread's stack whenever the loop has not turned for ``limit``
        seconds (``--stalls``; a diagnosis aid, off when measuring)."""
        import traceback

        reported = 0.0
        while True:
            time.sleep(limit / 4)
            beat = self.beat
            if beat and beat != reported and time.perf_counter() - beat > limit:
                reported = beat
                frame = sys._current_frames().get(main)
                stack = "".join(traceback.format_stack(frame)[-12:]) if frame else "?"
                print(f"stall > {limit * 1000:.0f} ms:\n{stack}", flush=True)

    def mark(self) -> None:
        self.lags.clear()
        self.gc_pauses.clear()
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        self.sent0 = {c: s.pacer.stats.frames_sent for c, s in self.pbx.sessions.items()}

    def window(self) -> dict[str, Any]:
        cpu = (time.process_time() - self.cpu0) / (time.perf_counter() - self.wall0)
        lateness = [
            s.pacer.stats.recent_lateness()[-(s.pacer.stats.frames_sent - self.sent0[c]) :]
            for c, s in self.pbx.sessions.items()
            if c in self.sent0 and s.pacer.stats.frames_sent > self.sent0[c]
        ]
        late = np.concatenate(lateness) * 1000 if lateness else np.zeros(1)
        lags = np.asarray(self.lags or [0.0]) * 1000
        return {
            "cpu": cpu,
            "rss_kib": rss_kib(),
            "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "sessions": len(self.pbx.sessions),
            "lag_p50_ms": float(np.percentile(lags, 50)),
            "lag_p99_ms": float(np.percentile(lags, 99)),
            "lag_max_ms": float(lags.max()),
            "late_p50_ms": float(np.percentile(late, 50)),
            "late_p99_ms": float(np.percentile(late, 99)),
            "late_max_ms": float(late.max()),
            "frames_out": int(late.size),
            "gc_objects": len(gc.get_objects()),
            "gc_frozen": gc.get_freeze_count(),
            "gc": {
                str(g): [
                    sum(1 for gen, _, _ in self.gc_pauses if gen == g),
                    1000 * max([p for gen, p, _ in self.gc_pauses if gen == g] or [0.0]),
                    1000 * sum(p for gen, p, _ in self.gc_pauses if gen == g),
                    sum(c for gen, _, c in self.gc_pauses if gen == g),
                ]
                for g in (0, 1, 2)
            },
            "gc_tracked": [len(gc.get_objects(g)) for g in (0, 1, 2)],
            "gc_census": census() if CENSUS else {},
        }


def census() -> dict[str, int]:
    """The objects the collector tracks by generation and kind (``g module.Class``), the 25
    commonest of each."""
    from collections import Counter

    found: dict[str, int] = {}
    for g in (0, 1, 2):
        kinds = Counter(
            f"{g} {getattr(type(o), '__module__', '?')}.{type(o).__qualname__}"
            for o in gc.get_objects(g)
        )
        found.update(kinds.most_common(25))
    found.update((f"module loaded since start-up: {name}", 1) for name in loaded_since())
    return found


CENSUS = bool(os.environ.get("BENCH_GC_CENSUS"))  # what the collector tracks, by kind
STARTED_WITH: set[str] = set()  # the modules loaded when the node was up


def loaded_since() -> list[str]:
    return sorted(set(sys.modules) - STARTED_WITH) if STARTED_WITH else []


async def remember_modules(_app: web.Application) -> None:
    STARTED_WITH.update(sys.modules)


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--media-port", type=int, required=True)
    parser.add_argument("--core", type=int, default=None)
    parser.add_argument("--stalls", type=float, default=0.0, help="report stalls over this (s)")
    parser.add_argument("--profile", default="", help="cProfile the window into this file")
    parser.add_argument("--workers", type=int, default=1, help="voicedock serve --workers N")
    parser.add_argument("--worker", default="", help="(a worker of the supervisor: k/N)")
    parser.add_argument("--orders-fd", type=int, default=-1, help="(its orders' pipe)")
    args = parser.parse_args()
    settings = load_settings(args.config)
    if args.workers > 1:  # the supervisor: each worker this script again, on a core of its own
        return supervise(settings, args.workers, worker_command(args))
    pin(args.core)
    # glibc's thresholds as `voicedock serve` fixes them (an older tree: none).
    with contextlib.suppress(ImportError):
        from voicedock.allocator import settle_allocator

        settle_allocator()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(16384, hard), hard))
    worker = None
    if args.worker:
        worker = serve.Worker(WorkerPlace.parse(settings, args.worker), args.orders_fd)
        settings = worker_settings(settings, worker.place)
    pbx = BenchPbx(args.media_port)
    meter = Meter(pbx)
    app = create_app(settings, lambda: Service.open(settings, pbx=pbx))

    profile = None

    async def mark(_: web.Request) -> web.Response:
        nonlocal profile
        meter.mark()
        if args.profile:
            import cProfile

            profile = cProfile.Profile()
            profile.enable()
        return web.json_response({"ok": True})

    async def window(_: web.Request) -> web.Response:
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        return web.json_response(meter.window())

    async def media(_: web.Request) -> web.Response:
        return web.json_response(
            {"counts": pbx.counts, "live": len(pbx.sessions), "rss_kib": rss_kib()}
        )

    async def heap(_: web.Request) -> web.Response:
        tracked = [len(gc.get_objects(g)) for g in (0, 1, 2)]
        found = {"tracked": tracked, "frozen": gc.get_freeze_count()}
        return web.json_response(found | ({"census": census()} if CENSUS else {}))

    async def lag_watch(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(meter.watch_lag())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    if args.stalls:
        import threading

        main_id = threading.get_ident()
        threading.Thread(
            target=meter.watch_stalls, args=(main_id, args.stalls), daemon=True
        ).start()
    # The collector's policy as `voicedock serve` sets it (an older tree: its own, if any).
    try:
        from voicedock.collector import garbage_collector
    except ImportError:  # a tree before voicedock/collector.py
        policy = getattr(cli, "garbage_collector", None)
        settle = policy(settings.server) if policy else getattr(cli, "freeze_startup_heap", None)
        if settle is not None:
            app.on_startup.append(settle)
    else:
        every = settings.server.gc_full_every_seconds
        app.cleanup_ctx.append(garbage_collector(settings.server.gc_thresholds, every))
    app.on_startup.append(remember_modules)
    app.router.add_post("/bench/mark", mark)
    app.router.add_get("/bench/window", window)
    app.router.add_get("/bench/media", media)
    app.router.add_get("/bench/heap", heap)
    app.cleanup_ctx.append(lag_watch)
    kind = settings.server.event_loop
    print(f"node {settings.node.id} pid {os.getpid()} loop {kind}", flush=True)
    serve.run(
        app,
        host=settings.server.host,
        port=settings.server.port,
        loop=new_event_loop(kind),
        ready=lambda: print("node listening", flush=True),
        worker=worker,
    )
    return 0


def worker_command(args: argparse.Namespace) -> Callable[[int, int], list[str]]:
    """Worker ``k`` of the supervisor: this script, pinned to core ``core + k - 1`` (of the
    machine's), with the supervisor's options."""
    cores = os.cpu_count() or 1

    def command(k: int, fd: int) -> list[str]:
        options = ["--config", args.config, "--media-port", str(args.media_port)]
        options += ["--core", str(((args.core or 0) + k - 1) % cores)]
        options += ["--stalls", str(args.stalls)] if args.stalls else []
        options += ["--profile", f"{args.profile}.w{k}"] if args.profile else []
        serving = [__file__, *options]
        return supervisor_command(serving, args.workers)(k, fd)

    return command


if __name__ == "__main__":
    sys.exit(main())
