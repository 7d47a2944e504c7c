"""How many whole calls does one node carry on one core, next to the media floor?

For each N and each event loop asked for, one run places N outbound calls through the REST API
of a node (bench/call_capacity_node.py: ``voicedock serve``'s app and service, SQLite, its PBX
replaced by one whose media legs are the callers' process) and lets them talk:

* callers (bench/call_capacity_load.py, own process, own core): people speaking recorded
  sentences (Piper, generated once) over chan_websocket in server mode, waiting for each reply;
* providers (bench/call_capacity_standins.py, own process): Deepgram's transcription,
  an OpenAI-compatible streamed chat completion with a configured time to first token,
  OpenAI's speech (PCM), each answering after a configured delay; and the webhook receiver;
* the node (pinned to ``--node-core``): REST, store, engine, conversation (VAD, fixed
  endpointing, barge-in, echo gate), provider clients, webhooks, media clock.

Per step, over a window of ``--window`` seconds with every call up: the **service share** of
each caller turn (the call's own latency record: endpointing decision → first reply frame
written to the media leg, minus the stand-ins' configured delays) p50/p95/p99; the caller's
ear (its sentence's last frame written → the first reply frame received) and that minus the
configured silence and delays; output lateness; frames lost both ways and frames the node
dropped; turns lost (no reply within 4 s) or answered twice; calls left unfinished; end-of-call
reports not delivered exactly once; node CPU per call, RSS per call, event-loop lag. Then, in
the same run, the media-only floor at the same N (bench/media_sessions.py's voicedock step:
bare ``MediaSession``s with VAD against bench/media_load.py's generator, on the same core).

    .venv/bin/python bench/call_capacity.py [--steps 50,100,200,300,500] [--loops asyncio,uvloop]
        [--window 20] [--out FILE]

A step passes when the p95 service share is <= 20 ms and nothing is lost (no frame, no turn,
no reply given twice or broken by a gap, no report, no call stuck). Loopback only; the node's
database is a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import multiprocessing as mp
import os
import platform
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests"))  # a private PostgreSQL, free ports

import media_sessions  # noqa: E402
from call_capacity_load import callers_main  # noqa: E402
from call_capacity_standins import REPLY, WORD_SECONDS, standins_main  # noqa: E402
from greeting_latency import databases, under_test  # noqa: E402
from media_load import core_times, generator_main, pin  # noqa: E402

from process_helpers import free_ports  # noqa: E402
from voicedock.media.codecs import ulaw_encode  # noqa: E402
from voicedock_lab.settings import default_cache_dir  # noqa: E402
from voicedock_lab.utterances import Utterance, cached_utterance, read_wav  # noqa: E402

SENTENCES = (
    Utterance("bench-caller-appointment", "I would like to book an appointment on Monday."),
    Utterance("bench-caller-hours", "Can you tell me when you are open tomorrow?"),
    Utterance("bench-caller-order", "My order has not arrived yet, can you check it for me?"),
)
REPLY_FRAMES = len(REPLY.split()) * WORD_SECONDS * 50  # the reply's audio, in 20 ms frames
END_SILENCE_MS = 600  # fixed endpointing: the silence that ends a caller's turn
CLI = "import sys; from voicedock.cli import main; sys.exit(main())"
AT_ONCE = 25  # REST requests at once
TARGET_SHARE_MS = 20.0
# A turn's record, each measured from the endpointing decision; the stand-ins' delays in order.
STAGES = ("stt_final_ms", "llm_first_token_ms", "tts_first_audio_ms", "first_frame_sent_ms")


# -- the callers' sentences ------------------------------------------------------------------


def caller_sentences() -> list[bytes]:
    """The recorded sentences (Piper, synthesized once into the lab cache) as 8 kHz µ-law,
    silence trimmed at both ends so that a sentence's last frame is its end of speech."""
    out = []
    for utterance in SENTENCES:
        pcm, rate = read_wav(cached_utterance(utterance, default_cache_dir()))
        assert rate == 8000
        samples = np.frombuffer(pcm, "<i2")
        frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
        loud = np.flatnonzero(np.abs(frames.astype(np.int32)).max(axis=1) > 800)
        out.append(ulaw_encode(frames[loud[0] : loud[-1] + 1].reshape(-1)))
    return out


# -- the node's configuration ----------------------------------------------------------------


def node_config(
    path: Path, port: int, standins: int, database: str, loop: str, collector: str = ""
) -> Path:
    """The node's TOML; ``collector``: its ``server.gc_thresholds`` ("T0/T1/T2"; empty: the
    product's default)."""
    base = f"http://127.0.0.1:{standins}/v1"
    thresholds = f"gc_thresholds = [{collector.replace('/', ', ')}]" if collector else ""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
event_loop = "{loop}"
{thresholds}

[database]
url = "{database}"

[node]
id = "bench"

[pbx]
kind = "none"

[[trunks]]
name = "carrier"
codec = "ulaw"

[[numbers]]
number = "+31850835037"
trunk = "carrier"
organization = "acme"
max_concurrent_calls = 10000
assistant = "Bench"

[[assistants]]
name = "Bench"
organization = "acme"
business_name = "Acme Corp"
first_message = "Hello, this is Acme Corp. How can I help you?"
provider = "openai"
system_prompt = "You are a friendly receptionist for Acme Corp."
[assistants.llm_config]
model = "gpt-4o-mini"
[assistants.stt_config]
provider = "deepgram"
base_url = "{base}"
api_key = "bench-deepgram-key"
[assistants.tts_config]
provider = "openai"
voice = "alloy"

[speech]
stt = "deepgram"
tts = "openai"
llm = "openai"
openai_base_url = "{base}"
openai_api_key = "bench-openai-key"
deepgram_api_key = "bench-deepgram-key"

[speech.endpointing]
mode = "fixed"
end_silence_ms = {END_SILENCE_MS}

[egress]
allow_loopback = true
provider_hosts = ["127.0.0.1:{standins}"]

[[webhooks.endpoints]]
name = "bench"
organization = "acme"
url = "http://127.0.0.1:{standins}/hooks"
secret = "{secret}"

[webhooks]
concurrency = 32

[policy]
allowed_countries = ["NL"]

[rate_limits]
requests_per_second = 0
calls_per_second = 0
organization_requests_per_second = 0
organization_calls_per_second = 0

[console]
enabled = false
"""
    )
    return path


def issue_key(config: Path) -> str:
    args = [sys.executable, "-c", CLI, "keys", "create", "--organization", "acme"]
    done = subprocess.run(
        [*args, "--config", str(config)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


# -- talking to the processes ----------------------------------------------------------------


def ask(conn: Connection, request: str) -> Any:
    conn.send(request)
    return conn.recv() if request == "stats" else None


async def bounded(jobs: Iterable[Awaitable[Any]], at_once: int = AT_ONCE) -> list[Any]:
    limit = asyncio.Semaphore(at_once)

    async def one(job: Awaitable[Any]) -> Any:
        async with limit:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


@dataclass
class Node:
    """The node under test: its API (``base``: the machine's port with several workers) and
    each worker's own address for the bench routes (``workers``: ``[base]`` for one)."""

    http: aiohttp.ClientSession
    base: str
    key: str
    workers: list[str]
    assistant_id: str = ""

    async def each(self, method: str, path: str) -> list[Any]:
        """``path`` of every worker's bench routes."""

        async def one(base: str) -> Any:
            async with self.http.request(
                method, base + path, json={}, headers=self.headers
            ) as resp:
                assert resp.status == 200, f"{path}: {resp.status} {await resp.text()}"
                return await resp.json()

        return await asyncio.gather(*(one(base) for base in self.workers))

    async def media(self) -> dict[str, Any]:
        """Every worker's calls' media counts together, the calls each has live, their RSS."""
        found = await self.each("GET", "/bench/media")
        counts: dict[str, Any] = {}
        for worker in found:
            counts.update(worker["counts"])
        live = [worker["live"] for worker in found]
        rss = sum(worker["rss_kib"] for worker in found)
        return {"counts": counts, "live": sum(live), "each": live, "rss_kib": rss}

    async def window(self) -> dict[str, Any]:
        """The window's measures of every worker: CPU and RSS summed (in cores, KiB), the
        worst worker's lag and lateness, garbage collections of all."""
        found = await self.each("GET", "/bench/window")
        out = {key: max(w[key] for w in found) for key in found[0] if key.endswith("_ms")}
        out["cpu"] = sum(w["cpu"] for w in found)
        out["cpu_each"] = [w["cpu"] for w in found]
        out["rss_kib"] = sum(w["rss_kib"] for w in found)
        out["gc"] = {
            g: [
                sum(w["gc"][g][0] for w in found),
                max(w["gc"][g][1] for w in found),
                sum(w["gc"][g][2] for w in found),
                sum(w["gc"][g][3] for w in found),
            ]
            for g in found[0]["gc"]
        }
        out["gc_tracked"] = [sum(w["gc_tracked"][g] for w in found) for g in range(3)]
        out["gc_frozen"] = sum(w["gc_frozen"] for w in found)
        out["gc_census"] = found[0]["gc_census"]
        return out

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def get(self, path: str) -> Any:
        async with self.http.get(self.base + path, headers=self.headers) as resp:
            assert resp.status == 200, f"{path}: {resp.status} {await resp.text()}"
            return await resp.json()

    async def post(self, path: str, body: object) -> tuple[int, Any]:
        async with self.http.post(self.base + path, json=body, headers=self.headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def place(self, index: int) -> str | None:
        """``POST /calls/outbound`` on a connection of its own, as clients behind a load
        balancer: with several workers, the kernel gives each connection to one of them."""
        body = {"destination": f"+316{20000000 + index:08d}", "assistant_id": self.assistant_id}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as one:
            url = self.base + "/calls/outbound"
            async with one.post(url, json=body, headers=self.headers) as resp:
                found = await resp.json(content_type=None)
                return str(found["call_id"]) if resp.status == 200 else None

    async def statuses(self) -> dict[str, str]:
        found: dict[str, str] = {}
        cursor = ""
        while True:
            page = await self.get(f"/calls?limit=1000{cursor}")
            found.update({c["id"]: c["status"] for c in page["calls"]})
            if not page.get("next_cursor"):
                return found
            cursor = f"&cursor={page['next_cursor']}"


async def until(check: Any, within: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every)
    return False


# -- one step --------------------------------------------------------------------------------


@dataclass
class Step:
    loop: str
    workers: int
    n: int
    collector: str = ""  # the node's server.gc_thresholds ("": the default)
    before: bool = False  # the node runs --before's source, not this tree's
    each: list[int] = field(default_factory=list)  # the calls each worker served
    placed: int = 0
    refused: int = 0
    row: dict[str, Any] = field(default_factory=dict)
    floor: dict[str, Any] = field(default_factory=dict)


def pct(values: list[float] | np.ndarray, p: float) -> float:
    return float(np.percentile(np.asarray(values), p)) if len(values) else float("nan")


async def calls_step(
    node: Node,
    callers: Connection,
    standins: Connection,
    step: Step,
    window: float,
    delays: tuple[float, float, float],
    idle_rss: int,
) -> None:
    delays_ms = sum(delays)
    stage_delays = (*delays, 0.0)
    n = step.n
    ramp = max(2.0, min(6.0, n / 50))  # the calls' turns fall at every phase of the cycle
    started = time.monotonic()

    async def place(i: int) -> str | None:
        await asyncio.sleep(ramp * i / n)
        return await node.place(i)

    ids = [c for c in await bounded((place(i) for i in range(n)), at_once=n) if c]
    step.placed, step.refused = len(ids), n - len(ids)

    async def all_up() -> bool:
        return bool((await node.media())["live"] >= len(ids))

    assert await until(all_up, 60), "the calls' media did not come up"
    print(f"  {n} calls up in {time.monotonic() - started:.1f} s", flush=True)
    await asyncio.sleep(4.0)  # every caller past its greeting
    ask(standins, "stats")  # the stand-ins' lateness from here on
    step.each = (await node.media())["each"]  # the calls each worker serves
    await node.each("POST", "/bench/mark")
    ask(callers, "mark")
    window_start = time.monotonic()
    cores = range(os.cpu_count() or 1)
    before = [core_times(c) for c in cores]
    await asyncio.sleep(window)
    after = [core_times(c) for c in cores]
    measured = await node.window()
    ask(callers, "end")
    window_end = time.monotonic()
    provider_stats = ask(standins, "stats")
    ask(callers, "drain")  # no new sentence; the turns under way finish
    await asyncio.sleep(3.5 + 4.0)
    ask(callers, "mute")  # then nothing more is sent: every frame sent can be counted
    await asyncio.sleep(0.5)

    async def end(call_id: str) -> None:
        await node.post(f"/calls/{call_id}/control", {"type": "end-call"})

    await bounded(end(c) for c in ids)

    async def all_ended() -> bool:
        statuses = await node.statuses()
        return all(statuses.get(c) in ("ended", "failed") for c in ids)

    await until(all_ended, 60)
    statuses = await node.statuses()
    stuck = sum(statuses.get(c) not in ("ended", "failed") for c in ids)

    async def reports_in() -> bool:
        found = ask(standins, "stats")["deliveries"]
        return all(found.get(f"{c} end-of-call-report", 0) >= 1 for c in ids)

    await until(reports_in, 30, every=0.5)
    await asyncio.sleep(1.0)  # a second delivery would come now
    deliveries = ask(standins, "stats")["deliveries"]
    reports = [deliveries.get(f"{c} end-of-call-report", 0) for c in ids]
    records = await bounded(node.get(f"/calls/{c}") for c in ids)
    media = (await node.media())["counts"]
    report, callers_cpu, _open = ask(callers, "stats")
    ask(callers, "reset")

    shares, ear, ear_shares, turns, lost, twice, unmatched = [], [], [], 0, 0, 0, 0
    parts: dict[str, list[float]] = {}
    gaps = 0
    lost_in = lost_out = dropped = 0
    for call_id, record in zip(ids, records, strict=True):
        sent_in, received_out, caller_turns = report.get(call_id, (0, 0, []))
        node_in, node_dropped, node_sent = media.get(call_id, (0, 0, 0))
        lost_in += sent_in - node_in
        lost_out += node_sent - received_out
        dropped += node_dropped
        latency = record.get("latency") or []
        in_window = [window_start <= ended < window_end for ended, *_ in caller_turns]
        for (ended, answered, replies, speech), counted in zip(
            caller_turns, in_window, strict=True
        ):
            if not counted:
                continue
            turns += 1
            lost += answered is None
            doubled = speech > 1.5 * REPLY_FRAMES
            twice += doubled
            gaps += replies > 1 and not doubled
            if answered is not None:
                ear.append((answered - ended) * 1000)
                ear_shares.append((answered - ended) * 1000 - END_SILENCE_MS - delays_ms)
        # The call's own record, turn by turn: the caller's k-th sentence is its k-th turn.
        if len(latency) != len(caller_turns):
            unmatched += 1
            continue
        for turn, counted in zip(latency, in_window, strict=True):
            if counted and turn.get("first_frame_sent_ms") is not None:
                shares.append(turn["first_frame_sent_ms"] - delays_ms)
                marks = [turn.get(k) for k in STAGES]
                if None not in marks:
                    previous = 0.0
                    for stage, at, delay in zip(STAGES, marks, stage_delays, strict=True):
                        parts.setdefault(stage, []).append(at - previous - delay)
                        previous = at
    step.row = {
        "turns": turns,
        "lost": lost,
        "twice": twice,
        "gaps": gaps,
        "share_p50": pct(shares, 50),
        "share_p95": pct(shares, 95),
        "share_p99": pct(shares, 99),
        "share_n": len(shares),
        "ear_p50": pct(ear, 50),
        "ear_p95": pct(ear, 95),
        "ear_p99": pct(ear, 99),
        "ear_share_p95": pct(ear_shares, 95),
        "lost_in": lost_in,
        "lost_out": lost_out,
        "dropped": dropped,
        "stuck": stuck,
        "reports_not_once": sum(r != 1 for r in reports),
        "unmatched": unmatched,
        "parts_p50": {k: pct(v, 50) for k, v in parts.items()},
        "parts_p95": {k: pct(v, 95) for k, v in parts.items()},
        "cpu": measured["cpu"],
        "cpu_each": measured["cpu_each"],
        # Each core's busy share over the window, whoever ran there (the node, the load, the
        # database, the machine's other work).
        "cores_busy": [
            (b1 - b0) / max(1, t1 - t0) for (b0, t0), (b1, t1) in zip(before, after, strict=True)
        ],
        "cpu_per_call": measured["cpu"] / n,
        "rss_mib": measured["rss_kib"] / 1024,
        "rss_per_call_kib": (measured["rss_kib"] - idle_rss) / n,
        "lag_p50": measured["lag_p50_ms"],
        "lag_p99": measured["lag_p99_ms"],
        "lag_max": measured["lag_max_ms"],
        "late_p50": measured["late_p50_ms"],
        "late_p99": measured["late_p99_ms"],
        "late_max": measured["late_max_ms"],
        "callers_cpu": callers_cpu,
        "gc": measured["gc"],
        "gc_tracked": measured["gc_tracked"],
        "gc_census": measured["gc_census"],
        "gc_frozen": measured["gc_frozen"],
        "providers_late_p99": provider_stats["late_p99_ms"],
        "requests": provider_stats["requests"],
    }
    row = step.row
    row["ok"] = bool(
        row["share_p95"] <= TARGET_SHARE_MS
        and not (lost or twice or gaps or lost_in or lost_out or dropped or stuck)
        and not row["reports_not_once"]
        and not step.refused
        and turns > 0
    )


def floor_step(
    gen_port: int, gen_conn: Connection, n: int, window: float, loop: str, sid: str
) -> dict[str, Any]:
    """bench/media_sessions.py's voicedock step at the same N, on the node's core."""
    with asyncio.Runner(loop_factory=media_sessions.loop_factory(loop)) as runner:
        result: dict[str, Any] = runner.run(
            media_sessions.voicedock_step(gen_port, gen_conn, n, window, sid)
        )
    return result


# -- the run ---------------------------------------------------------------------------------


async def wait_node(http: aiohttp.ClientSession, bases: list[str], within: float = 90) -> None:
    deadline = time.monotonic() + within
    for base in bases:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(base + "/openapi.json") as resp:
                    if resp.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError("the node did not start")
            await asyncio.sleep(0.3)


def free_port(count: int = 1) -> int:
    """A free port (and the ``count - 1`` after it: the workers' own ports)."""
    return free_ports(count)


@dataclass
class Running:
    """One node under test (``workers`` of them), running for the whole loop."""

    workers: int
    process: subprocess.Popen[bytes]
    node: Node
    collector: str = ""  # its server.gc_thresholds ("": the default)
    before: bool = False  # it runs --before's source
    behind: bool = False  # a step fell far behind: no larger step


async def run_loop(
    loop: str,
    variants: list[Variant],
    steps: list[int],
    args: argparse.Namespace,
    workdir: Path,
    ports: dict[str, int],
    pipes: dict[str, Connection],
    database: Callable[[Path], Awaitable[str]],
) -> list[Step]:
    """Every step for each node in turn (``variants``: its workers, collector thresholds and
    source, this tree's or ``--before``'s): one node each, all started first, so that each N
    is measured on each within the same minutes (the machine's other work weighs on all
    alike)."""
    done: list[Step] = []
    delays = (args.stt_delay, args.llm_delay, args.tts_delay)
    nodes: list[Running] = []
    compared = len({(collector, before) for _workers, collector, before in variants}) > 1
    connector = aiohttp.TCPConnector(limit=AT_ONCE * 4)
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            for workers, collector, before in variants:
                nodes.append(
                    await start_running(
                        loop, workers, args, workdir, ports, http, database, collector, before
                    )
                )
            for n in steps:
                for running in nodes:
                    if running.behind:
                        continue
                    node, workers = running.node, running.workers
                    step = Step(loop, workers, n, running.collector, running.before)
                    idle_rss = (await node.media())["rss_kib"]
                    idle_heap = await node.each("GET", "/bench/heap")
                    print(f"{label(step)} N={n}: calls (idle heap {idle_heap})", flush=True)
                    await calls_step(
                        node,
                        pipes["callers"],
                        pipes["standins"],
                        step,
                        args.window,
                        delays,
                        idle_rss,
                    )
                    print(f"  {row_line(step.row)} calls per worker {step.each}", flush=True)
                    for kind, count in step.row.get("gc_census", {}).items():
                        print(f"    {count:8d} {kind}", flush=True)
                    done.append(step)
                    if not args.no_floor and workers == 1 and not running.before:
                        step.floor = await media_floor(args, ports, pipes, loop, n)
                    if not step.row["ok"] and step.row["share_p95"] > 4 * TARGET_SHARE_MS:
                        print("  the node fell behind: no larger step", flush=True)
                        running.behind = True
                if compared and not all(running.behind for running in nodes):
                    for running in nodes:  # variants compared go on together
                        running.behind = False
                if all(running.behind for running in nodes):
                    break
        finally:
            for running in nodes:
                stop_node(running.process)
    return done


async def start_running(
    loop: str,
    workers: int,
    args: argparse.Namespace,
    workdir: Path,
    ports: dict[str, int],
    http: aiohttp.ClientSession,
    database: Callable[[Path], Awaitable[str]],
    collector: str = "",
    before: bool = False,
) -> Running:
    """The node of ``workers`` worker(s) on a fresh database, once it serves; ``before``: on
    ``--before``'s source."""
    port = free_port(workers + 1)
    name = node_name(loop, workers, collector, before)
    url = await database(workdir / f"{name}.db")
    config = node_config(workdir / f"{name}.toml", port, ports["standins"], url, loop, collector)
    key = issue_key(config)
    source = args.before if before else ""
    process = start_node(config, ports["callers"], args, workers, workdir / f"{name}.log", source)
    base = f"http://127.0.0.1:{port}"
    own = [f"http://127.0.0.1:{port + k}" for k in range(1, workers + 1)]
    node = Node(http, base, key, own if workers > 1 else [base])
    running = Running(workers, process, node, collector, before)
    try:
        await wait_node(http, [base, *node.workers])
        assistants = await node.get("/assistants")
        node.assistant_id = next(a["id"] for a in assistants["assistants"] if a["name"] == "Bench")
    except BaseException:
        stop_node(process)
        raise
    await asyncio.sleep(1.0)
    return running


async def media_floor(
    args: argparse.Namespace,
    ports: dict[str, int],
    pipes: dict[str, Connection],
    loop: str,
    n: int,
) -> dict[str, Any]:
    """The media floor at ``n``, on the node's core."""
    pin(args.node_core)
    media_sessions.MEDIA_CORE[0] = args.node_core
    floor = await asyncio.to_thread(
        floor_step,
        ports["generator"],
        pipes["generator"],
        n,
        args.window,  # as long as the calls' window: the ratio of the two is the criterion
        loop,
        f"f{loop}{n}",
    )
    pin(args.driver_core)
    print(f"  floor: {media_sessions.line('media floor', floor)}", flush=True)
    return floor


def stop_node(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM: the node drains (no call is left), its workers too; then killed if need be."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_node(
    config: Path,
    media_port: int,
    args: argparse.Namespace,
    workers: int,
    log: Path,
    source: str = "",
) -> subprocess.Popen[bytes]:
    """The node's own process (its output in ``log``); with several workers, their
    supervisor, worker k pinned to core ``--node-core`` + k - 1. ``source``: another
    checkout whose voicedock the node runs (``src/`` first on its path)."""
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(source) / "src"), env.get("PYTHONPATH", "")) if p
        )
    with log.open("w") as out:
        return subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "call_capacity_node.py"),
                *("--config", str(config), "--media-port", str(media_port)),
                *("--core", str(args.node_core), "--workers", str(workers)),
                *(["--stalls", str(args.stalls)] if args.stalls else []),
                *(["--profile", args.profile] if args.profile else []),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


# A node measured: its workers, collector thresholds ("": the default) and whether it runs
# --before's source.
Variant = tuple[int, str, bool]


def node_name(loop: str, workers: int, collector: str, before: bool = False) -> str:
    gc = f"-gc{collector.replace('/', '-')}" if collector else ""
    return f"node-{loop}-{workers}w{gc}" + ("-before" if before else "")


def label(step: Step) -> str:
    """The step's node: its loop, workers and, when not the default, collector thresholds
    and the source before."""
    gc = f" gc {step.collector}" if step.collector else ""
    return f"{step.loop} {step.workers} worker(s){gc}" + (" before" if step.before else "")


def row_line(r: dict[str, Any]) -> str:
    return (
        f"turns={r['turns']} lost={r['lost']} twice={r['twice']} gaps={r['gaps']} "
        "share p50/p95/p99="
        f"{r['share_p50']:.1f}/{r['share_p95']:.1f}/{r['share_p99']:.1f} ms ear p95="
        f"{r['ear_p95']:.0f} lost in/out={r['lost_in']}/{r['lost_out']} dropped={r['dropped']} "
        f"stuck={r['stuck']} reports!=1: {r['reports_not_once']} cpu={r['cpu']:.0%} "
        f"({r['cpu_per_call'] * 100:.2f} %/call) rss/call={r['rss_per_call_kib']:.0f} KiB "
        f"lag p99={r['lag_p99']:.1f} ms gc2={r['gc']['2']} ok={r['ok']}"
    )


def start(target: Any, args: tuple[Any, ...]) -> tuple[Any, Connection]:
    parent, child = mp.Pipe()
    process = mp.get_context("spawn").Process(target=target, args=(child, *args))
    process.start()
    return process, parent


def run(args: argparse.Namespace) -> tuple[list[Step], dict[str, str]]:
    sentences = caller_sentences()
    pin(args.driver_core)
    delays = (args.stt_delay / 1000, args.llm_delay / 1000, args.tts_delay / 1000)
    procs: list[tuple[Any, Connection]] = []
    steps = [int(s) for s in args.steps.split(",")]
    done: list[Step] = []
    try:
        procs.append(start(callers_main, (args.load_cores, "uvloop", sentences)))
        callers_port, load_cores = procs[-1][1].recv()
        procs.append(start(standins_main, (args.load_cores, delays, "uvloop")))
        standins_port = procs[-1][1].recv()
        procs.append(start(generator_main, (args.load_cores, "uvloop")))
        generator_port, _ = procs[-1][1].recv()
        ports = {"callers": callers_port, "standins": standins_port, "generator": generator_port}
        pipes = {"callers": procs[0][1], "standins": procs[1][1], "generator": procs[2][1]}
        variants: list[Variant] = [
            (int(w), "" if c == "default" else c, before)
            for before in ([True, False] if args.before else [False])
            for w in args.workers.split(",")
            for c in args.gc.split(",")
        ]
        with (
            tempfile.TemporaryDirectory(prefix="call-capacity-") as tmp,
            databases(args.database) as new,
        ):
            for loop in args.loops.split(","):
                try:
                    done += asyncio.run(
                        run_loop(loop, variants, steps, args, Path(tmp), ports, pipes, new)
                    )
                finally:  # kept when a node failed too: its log says why
                    for workers, collector, before in variants if args.keep else ():
                        Path(args.keep).mkdir(parents=True, exist_ok=True)
                        log = Path(tmp) / f"{node_name(loop, workers, collector, before)}.log"
                        if log.exists():
                            (Path(args.keep) / log.name).write_text(log.read_text())
    finally:
        for process, conn in procs:
            with contextlib.suppress(OSError):
                conn.send("stop")
            process.join(5)
            if process.is_alive():
                process.terminate()
    return done, {"load": load_cores}


LOAD_AT_START: list[float] = [0.0, 0.0, 0.0]  # os.getloadavg() as the run began


def parse_cores(text: str) -> frozenset[int]:
    """``1``, ``8-15`` or ``8,9,12`` (ranges and single cores, comma-separated) as a set."""
    cores: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            cores.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not cores: {text!r} (e.g. 1, 8-15, 8,9,12)") from None
    if not cores:
        raise argparse.ArgumentTypeError(f"no cores in {text!r}")
    return frozenset(cores)


def cores_text(cores: frozenset[int]) -> str:
    """``core 1``, ``cores 8-15``, ``cores 8,9,12``."""
    ordered = sorted(cores)
    if len(ordered) == 1:
        return f"core {ordered[0]}"
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"cores {ordered[0]}-{ordered[-1]}"
    return "cores " + ",".join(map(str, ordered))


def machine() -> str:
    """The machine as it is: its host name, system, CPU model and count, memory, and the load
    average before the run (what else was running: the report's figures are this machine's)."""
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        model = next(
            (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
            model,
        )
    memory = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as info:
        total = next((line.split()[1] for line in info if line.startswith("MemTotal:")), "")
        memory = f", {int(total) / 2**20:.0f} GiB memory" if total else ""
    return (
        f"{platform.node()} / {platform.platform()} / {model} x {os.cpu_count()}{memory}; load "
        f"average when the run began {' / '.join(f'{x:.2f}' for x in LOAD_AT_START)}"
    )


def report(done: list[Step], args: argparse.Namespace, started: str) -> str:
    now = dt.datetime.now(dt.UTC)
    best: dict[tuple[str, int, str, bool], tuple[int, float]] = {}
    for s in done:
        key = (s.loop, s.workers, s.collector, s.before)
        if s.row.get("ok") and s.n > best.get(key, (0, 0.0))[0]:
            best[key] = (s.n, s.row["cpu_per_call"])
    lines = [
        f"# call_capacity benchmark, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine()}",
        f"- python {platform.python_version()}; started {started}",
        f"- node pinned to core {args.node_core} (with several workers, worker k to core "
        f"{args.node_core} + k - 1); callers, providers' stand-ins, the media floor's generator "
        f"and the database on {cores_text(args.load_cores)} (each its own process, the "
        "kernel spreading them over those cores)",
        f"- database: {args.database}; workers measured: {args.workers}; collector thresholds "
        f"measured: {args.gc}",
        f"- stand-ins' delays: STT {args.stt_delay:.0f} ms, LLM first token "
        f"{args.llm_delay:.0f} ms, TTS first audio {args.tts_delay:.0f} ms; fixed endpointing "
        f"{END_SILENCE_MS} ms; window {args.window:.0f} s per step",
        f"- command: `{' '.join(sys.argv)}`",
        f"- voicedock under test: {under_test()}" + (f" ({args.label})" if args.label else ""),
        *(
            [f"- before (rows marked before, measured beside it): {under_test(Path(args.before))}"]
            if args.before
            else []
        ),
        f"- load average at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
        "Largest N passing (p95 service share <= 20 ms, nothing lost): "
        + (
            ", ".join(
                f"{label(Step(loop, workers, n, collector, before))} **{n}** ({cpu * 100:.2f} % "
                f"of a core per call: {1 / cpu:.0f} calls per core by CPU)"
                for (loop, workers, collector, before), (n, cpu) in best.items()
            )
            or "none"
        ),
        *_ratios(best),
        "",
        "| loop | code | workers | gc thresholds | N | calls per worker | turns | lost | twice "
        "| replies with a gap "
        "| share p50 / p95 / p99 ms "
        "| ear p50 / p95 / p99 ms "
        "| ear − waits p95 ms | out lateness p50 / p99 / max ms | frames lost in / out "
        "| dropped in | stuck | reports ≠ 1 | node CPU | CPU / call | calls / core by CPU "
        "| RSS MiB | RSS / call KiB | loop lag p50 / p99 / max ms | ok |",
        "|---|" * 1 + "---|" * 25,
    ]
    for s in done:
        r = s.row
        lines.append(
            f"| {s.loop} | {'before' if s.before else 'this tree'} | {s.workers} "
            f"| {s.collector or 'default'} | {s.n} "
            f"| {' + '.join(map(str, s.each))} "
            f"| {r['turns']} | {r['lost']} | {r['twice']} | {r['gaps']} "
            f"| {r['share_p50']:.1f} / {r['share_p95']:.1f} / {r['share_p99']:.1f} "
            f"| {r['ear_p50']:.0f} / {r['ear_p95']:.0f} / {r['ear_p99']:.0f} "
            f"| {r['ear_share_p95']:.0f} "
            f"| {r['late_p50']:.0f} / {r['late_p99']:.0f} / {r['late_max']:.0f} "
            f"| {r['lost_in']} / {r['lost_out']} | {r['dropped']} | {r['stuck']} "
            f"| {r['reports_not_once']} | {' + '.join(f'{c:.0%}' for c in r['cpu_each'])} "
            f"| {r['cpu_per_call'] * 100:.3f} % "
            f"| {1 / r['cpu_per_call']:.0f} | {r['rss_mib']:.0f} | {r['rss_per_call_kib']:.0f} "
            f"| {r['lag_p50']:.1f} / {r['lag_p99']:.1f} / {r['lag_max']:.0f} "
            f"| {'yes' if r['ok'] else 'no'} |"
        )
    lines += [
        "",
        "Where the service share goes, p50 / p95 ms (each stage of the call's own record minus "
        "the stand-in's delay in it: STT client = transcript back, LLM client = first token, "
        "TTS client = first audio, to the media leg = first frame written):",
        "",
        "| node | N | STT client | LLM client | TTS client | to the media leg |",
        "|---|---|---|---|---|---|",
    ]
    for s in done:
        p50, p95 = s.row["parts_p50"], s.row["parts_p95"]
        cells = " | ".join(f"{p50.get(k, 0):.1f} / {p95.get(k, 0):.1f}" for k in STAGES)
        lines.append(f"| {label(s)} | {s.n} | {cells} |")
    lines += (
        []
        if not any(s.floor for s in done)
        else [
            "",
            "Media-only floor at the same N, same core, same run (bench/media_sessions.py's "
            "voicedock step: bare MediaSessions with VAD, no call; one worker's runs), measured "
            "over a window as long as the calls' right after them; and the whole call's CPU "
            "divided by it:",
            "",
            "| loop | N | out p99 ms | lost out / in | CPU | CPU / session | sessions / core "
            "| whole call ÷ floor |",
            "|---|---|---|---|---|---|---|---|",
        ]
    )
    for s in done:
        f = s.floor
        if f:
            lines.append(
                f"| {s.loop} | {s.n} | {f['p99_ms']:.1f} | {f['lost_out']} / {f['lost_in']} "
                f"| {f['cpu']:.0%} | {f['cpu_per_session'] * 100:.3f} % | {f['per_core']:.0f} "
                f"| {s.row['cpu_per_call'] / f['cpu_per_session']:.2f} |"
            )
    lines += _floor_ratio(done)
    lines += [
        "",
        "Providers' requests and their stand-ins' own lateness (p99, how much later than "
        "configured they answered) per step, and how busy each core was over the window "
        "(whatever ran on it):",
        "",
    ]
    for s in done:
        lines.append(
            f"- {label(s)} N={s.n}: {s.row['requests']}, stand-ins late p99 "
            f"{s.row['providers_late_p99']:.1f} ms, callers' process CPU "
            f"{s.row['callers_cpu']:.0%}, each core busy "
            + " / ".join(f"{busy:.0%}" for busy in s.row["cores_busy"])
        )
    lines += [
        "",
        "The node's garbage collections in the window, per generation: count, longest pause, "
        "total ms, objects they freed; then the objects the collector tracks at the window's "
        "end, per generation, and those frozen out of its reach:",
        "",
    ]
    for s in done:
        gcs = s.row["gc"]
        lines.append(
            f"- {label(s)} N={s.n}: "
            + ", ".join(
                f"gen{g} {c} / {mx:.1f} / {tot:.0f} / {freed}"
                for g, (c, mx, tot, freed) in gcs.items()
            )
            + f"; tracked {' / '.join(map(str, s.row['gc_tracked']))}, "
            f"frozen {s.row['gc_frozen']}"
        )
    return "\n".join(lines) + "\n"


def _floor_ratio(done: list[Step]) -> list[str]:
    """Per loop and N measured more than once: the whole call ÷ the floor on the means of the
    windows (each window's own ratio moves with the machine's neighbours)."""
    groups: dict[tuple[str, int], list[Step]] = {}
    for s in done:
        if s.floor:
            groups.setdefault((s.loop, s.n), []).append(s)
    out = []
    for (loop, n), steps in groups.items():
        if len(steps) < 2:
            continue
        calls = sum(s.row["cpu_per_call"] for s in steps) / len(steps)
        floor = sum(s.floor["cpu_per_session"] for s in steps) / len(steps)
        each = [s.row["cpu_per_call"] / s.floor["cpu_per_session"] for s in steps]
        out.append(
            f"- {loop}, N={n}, {len(steps)} windows: whole call {calls * 100:.3f} % ÷ floor "
            f"{floor * 100:.3f} % = **{calls / floor:.2f}** on the means "
            f"(each window {min(each):.2f}-{max(each):.2f})"
        )
    return ["", *out] if out else []


def _ratios(best: dict[tuple[str, int, str, bool], tuple[int, float]]) -> list[str]:
    """Each loop's largest passing N with several workers against one."""
    out = []
    for (loop, workers, collector, before), (n, _cpu) in best.items():
        one = best.get((loop, 1, collector, before))
        if workers > 1 and one is not None:
            out.append(
                f"- {loop}: {workers} workers carry **{n / one[0]:.2f}×** the whole calls of one "
                f"({n} against {one[0]}) at p95 service share <= {TARGET_SHARE_MS:.0f} ms"
            )
    return ["", *out] if out else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", default="50,100,200,300,500")
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument(
        "--workers", default="1", help="workers to measure, each in turn (1,2: one against two)"
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres"),
        help="default: sqlite, postgres when a run has several workers (every run alike)",
    )
    parser.add_argument(
        "--gc",
        default="default",
        help="the nodes' server.gc_thresholds, each in turn: default (the product's) or "
        "T0/T1/T2 (700/10/10,default: Python's own against the default)",
    )
    parser.add_argument(
        "--before",
        default="",
        help="another checkout (a git worktree of an earlier commit): a node on its source "
        "measured beside this tree's at each N, in the same minutes",
    )
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--stt-delay", type=float, default=100.0, help="ms")
    parser.add_argument("--llm-delay", type=float, default=200.0, help="ms to first token")
    parser.add_argument("--tts-delay", type=float, default=80.0, help="ms to first audio")
    parser.add_argument("--node-core", type=int, default=0)
    parser.add_argument(
        "--load-cores",
        type=parse_cores,
        default=parse_cores("1" if (os.cpu_count() or 1) > 1 else "0"),
        help="the cores of the load (callers, stand-ins, the floor's generator, the database): "
        "one (1), a range (8-15) or a list (8,9,12)",
    )
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--stalls", type=float, default=0.0, help="node: print stalls > s")
    parser.add_argument("--profile", default="", help="node: cProfile each window into FILE")
    parser.add_argument("--keep", default="", help="copy the node's logs into this directory")
    parser.add_argument("--out", default="", help="write the report here")
    parser.add_argument("--label", default="", help="what the code under test is, in the report")
    args = parser.parse_args()
    args.driver_core = args.load_cores
    if args.database is None:
        several = any(int(w) > 1 for w in args.workers.split(","))
        args.database = "postgres" if several else "sqlite"
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(16384, hard), hard))
    started = f"{dt.datetime.now(dt.UTC):%H:%M} UTC"
    LOAD_AT_START[:] = os.getloadavg()
    # SIGTERM ends the run as Ctrl-C does: the node, the load and the database are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    done, _cores = run(args)
    text = report(done, args, started)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
