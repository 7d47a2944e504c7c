"""Two voicedock nodes, each a process of its own, with ``--calls`` live calls each.

A private PostgreSQL (``tests/pg_server``), a private lab Asterisk and two service processes
(``tests/nodes/node_process``: fake speech, so a call costs its media and its conversation, no
speech model) each with its own ARI application. Through each node's REST API ``--calls``
calls to the lab's echo line (it stays up until hung up) are placed at once. Then:

* every call reaches ``in-progress``, is still up ``--hold`` seconds later, and is owned by the
  node it was placed through, as both nodes' APIs tell and as the PBX tells (one channel, in
  that node's ARI application): no call lost, none owned twice;
* ``--rounds`` rounds in which every call gets one ``inject-context`` at once (no reply asked,
  so no speech: the command's own cost), sent to the call's node (direct) or to the other node
  (through PostgreSQL), alternating; then ``--sequential`` such commands one at a time; the
  client's round trip of ``POST /calls/{id}/control`` p50/p95/max per path; each call's events
  must show every command carried out once;
* every call gets ``end-call`` through the other node and must end ``api-end-call``, and the
  PBX must list none of the calls' channels or bridges afterwards.

Usage: ``.venv/bin/python bench/two_nodes.py [--calls 50] [--rounds 6] [--sequential 40]
[--hold 20]``; writes ``bench/results/two_nodes-<date>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from originate import machine, pct  # bench/, beside this script

from deploy.test_compose_as_shipped import TERMINAL, Api, get_json, wait_healthy
from fakes.world import SUPPORT_ID
from nodes.node_process import acme_api_key, node_process
from nodes.test_nodes_lab import ECHO, ari_auth, control, lab_ids, some_nodes
from pg_server import fresh_database, start_postgres
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings, free_port_range

NODES = ("a", "b")
OTHER = {"a": "b", "b": "a"}
OTHERS = ("Asterisk", "PostgreSQL", "bench client")  # whose CPU is counted besides the nodes'


@dataclass
class Run:
    calls: int
    hold: float
    placed: dict[str, str] = field(default_factory=dict)  # call id -> the node it went to
    refused: list[str] = field(default_factory=list)  # what a refused placement answered
    place_ms: list[float] = field(default_factory=list)
    all_up_s: float = 0.0
    lost: list[str] = field(default_factory=list)  # calls that did not reach in-progress
    why_lost: Counter[str] = field(default_factory=Counter)
    owner_mismatch: list[str] = field(default_factory=list)
    apps: Counter[str] = field(default_factory=Counter)  # (node, its channel's ARI app) seen
    times: dict[str, list[float]] = field(default_factory=dict)
    failed_commands: Counter[str] = field(default_factory=Counter)
    not_carried_once: list[str] = field(default_factory=list)
    end_ms: list[float] = field(default_factory=list)
    ended_s: float = 0.0
    end_reasons: Counter[str] = field(default_factory=Counter)
    left_at_pbx: int = -1
    phases: list[tuple[str, float, dict[str, float]]] = field(default_factory=list)
    tracebacks: dict[str, int] = field(default_factory=dict)


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU the process used so far; with ``children``, its children's too (the
    PostgreSQL server's backends)."""
    if pid == os.getpid():
        return sum(os.times()[:2])
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])  # children that ended
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    child = _stat(int(entry.name))
                except OSError:
                    continue
                if child[1] == str(pid):
                    ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def postmaster(dsn: str) -> int:
    """The PostgreSQL server's main process (the parent of a backend)."""
    connection = await asyncpg.connect(dsn)
    try:
        backend = int(await connection.fetchval("SELECT pg_backend_pid()"))
        return int(_stat(backend)[1])
    finally:
        await connection.close()


def busy_seconds() -> float:
    """CPU time the whole machine spent busy so far, all cores (not idle, not waiting)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def mark(run: Run, phase: str, pids: dict[str, int]) -> None:
    """The end of ``phase``: the time and the CPU used so far by each of ``pids``."""
    used = {name: cpu_seconds(pid, children=name == "PostgreSQL") for name, pid in pids.items()}
    used["machine"] = busy_seconds()
    run.phases.append((phase, time.monotonic(), used))


async def place(api: Api, node: str, run: Run) -> None:
    body = {
        "destination": ECHO,
        "assistant_id": SUPPORT_ID,
        "assistant_override": {"silence_timeout_seconds": 600},  # the echo line is "quiet"
    }
    began = time.perf_counter()
    async with api.http.post(
        f"{api.base}/calls/outbound", json=body, headers={"Authorization": f"Bearer {api.key}"}
    ) as resp:
        text = await resp.text()
    run.place_ms.append((time.perf_counter() - began) * 1000)
    if resp.status == 200:
        run.placed[str(json.loads(text)["call_id"])] = node
    else:
        run.refused.append(f"{resp.status} {text}")


async def statuses(api: Api) -> dict[str, str]:
    """Every call's status, as ``GET /calls`` lists them."""
    found: dict[str, str] = {}
    cursor = ""
    while True:
        page = await get_json(api.http, f"{api.base}/calls?limit=1000{cursor}", api.key)
        found.update({c["id"]: c["status"] for c in page["calls"]})
        if not page["next_cursor"]:
            return found
        cursor = f"&cursor={page['next_cursor']}"


async def until(check: Any, within: float) -> float:
    """Seconds until ``await check()`` is true (``within`` at most)."""
    began = time.monotonic()
    for _ in range(int(within)):  # a look a second
        if await check():
            break
        await asyncio.sleep(1.0)
    return time.monotonic() - began


async def timed_control(api: Api, call_id: str, body: dict[str, Any], run: Run, label: str) -> None:
    began = time.perf_counter()
    status, answer = await control(api, call_id, body)
    run.times.setdefault(label, []).append((time.perf_counter() - began) * 1000)
    if status != 200:
        run.failed_commands[f"{label}: {status} {answer}"] += 1


async def bench(
    lab: LabAsterisk, dsn: str, workdir: Path, run: Run, rounds: int, seq: int, hold: float
) -> None:
    ports, configs = some_nodes(NODES, workdir, dsn, lab, None, max_calls=4 * run.calls)
    with ExitStack() as stack:
        processes = {
            name: stack.enter_context(node_process(configs[name], workdir / f"{name}.log"))
            for name in NODES
        }
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=4 * run.calls)
        ) as http:
            before = await lab_ids(http, lab)
            for name in NODES:
                base = f"http://127.0.0.1:{ports[name]}"
                await wait_healthy(http, base, processes[name], workdir / f"{name}.log")
            key = await acme_api_key(dsn)
            apis = {name: Api(http, f"http://127.0.0.1:{ports[name]}", key) for name in NODES}
            pids = {name: processes[name].pid for name in NODES}
            pids["Asterisk"] = lab.status().pid or 0
            pids["PostgreSQL"] = await postmaster(dsn)
            pids["bench client"] = os.getpid()
            mark(run, "start", pids)

            began = time.monotonic()
            async with asyncio.TaskGroup() as tg:
                for name in NODES:
                    for _ in range(run.calls):
                        tg.create_task(place(apis[name], name, run))

            async def all_up() -> bool:
                seen = await statuses(apis["a"])
                up = [c for c in run.placed if seen.get(c) == "in-progress"]
                gone = [c for c in run.placed if seen.get(c) in TERMINAL]
                return len(up) == len(run.placed) or bool(gone)

            await until(all_up, 120)
            run.all_up_s = time.monotonic() - began
            mark(run, "placing the calls until all are in-progress", pids)
            await asyncio.sleep(hold)  # the calls talk meanwhile: none may drop
            mark(run, "holding them", pids)
            seen = await statuses(apis["a"])
            run.lost = [c for c in run.placed if seen.get(c) != "in-progress"]
            for call_id in run.lost:
                call = await apis["a"].call(call_id)
                run.why_lost[f"{call['status']}: {call['end_reason']}, {call['error']}"] += 1
            up = [c for c in run.placed if c not in run.lost]

            # Ownership: both APIs name the node it was placed through, and its channel is in
            # that node's ARI application.
            channels: dict[str, list[dict[str, Any]]] = {}
            async with http.get(f"{lab.ari_url}/channels", headers=ari_auth(lab)) as resp:
                for channel in await resp.json():
                    channels.setdefault(str(channel["id"]), []).append(channel)
            for call_id in up:
                owners = {(await apis[n].call(call_id))["node"] for n in NODES}
                own = channels.get(call_id, [])
                if owners != {run.placed[call_id]} or len(own) != 1:
                    run.owner_mismatch.append(call_id)
                for channel in own:
                    app = str(channel.get("dialplan", {}).get("app_data", "")).split(",")[0]
                    run.apps[f"{run.placed[call_id]} → {app or '?'}"] += 1

            sent: Counter[str] = Counter()
            for n in range(rounds):
                direct = n % 2 == 0
                label = "direct" if direct else "through the other node"
                async with asyncio.TaskGroup() as tg:
                    for call_id in up:
                        node = run.placed[call_id]
                        via = apis[node if direct else OTHER[node]]
                        body = {"type": "inject-context", "content": f"round {n}"}
                        tg.create_task(timed_control(via, call_id, body, run, f"{label}, all"))
                        sent[call_id] += 1
            mark(run, "command rounds, every call at once", pids)
            for n in range(seq):
                call_id = up[n % len(up)]
                direct = n % 2 == 0
                label = "direct" if direct else "through the other node"
                node = run.placed[call_id]
                via = apis[node if direct else OTHER[node]]
                body = {"type": "inject-context", "content": f"one {n}"}
                await timed_control(via, call_id, body, run, f"{label}, one at a time")
                sent[call_id] += 1
            mark(run, "commands one at a time", pids)
            for call_id in up:
                events = (await apis["a"].call(call_id))["events"]
                controls = [e["data"] for e in events if e["type"] == "control"]
                delivered = [c for c in controls if c.get("delivered_to") == "conversation"]
                if len(controls) != sent[call_id] or len(delivered) != sent[call_id]:
                    run.not_carried_once.append(call_id)

            # End every call through the other node.
            mark(run, "reading every call", pids)
            began = time.monotonic()
            async with asyncio.TaskGroup() as tg:
                for call_id in up:
                    via = apis[OTHER[run.placed[call_id]]]
                    body = {"type": "end-call"}
                    tg.create_task(timed_control(via, call_id, body, run, "end-call, other"))

            async def all_ended() -> bool:
                seen = await statuses(apis["b"])
                return all(seen.get(c) in TERMINAL for c in run.placed)

            await until(all_ended, 60)
            run.ended_s = time.monotonic() - began
            mark(run, "ending them all through the other node", pids)
            for call_id in run.placed:
                call = await apis["b"].call(call_id)
                run.end_reasons[f"{call['status']} {call['end_reason']}"] += 1

            async def pbx_clear() -> bool:
                return not (await lab_ids(http, lab) - before)

            await until(pbx_clear, 30)
            run.left_at_pbx = len(await lab_ids(http, lab) - before)
            alive = {n: processes[n].poll() is None for n in NODES}
            assert all(alive.values()), alive
    run.tracebacks = {n: (workdir / f"{n}.log").read_text().count("Traceback") for n in NODES}


def stats(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} | {pct(values, 0.95):.1f} | {max(values):.1f}"


def report(run: Run, command: str, load: str) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    total = 2 * run.calls
    placed = Counter(run.placed.values())
    lines = [
        f"# Two nodes × {run.calls} calls, {now}",
        "",
        f"Machine: {machine()} (shared: other work ran meanwhile)",
        "PostgreSQL on 127.0.0.1 and a lab Asterisk, started for the run; two service processes "
        "(fake speech: scripted STT, echo LLM, tone TTS), each its own ARI application; every "
        "call to the lab's echo line, its media open. The lab's RTP port range is widened for "
        "the run (its default for tests, 200 ports, carries 50 calls: two streams a call).",
        "",
        f"Command: `{command}`",
        "",
        "| what | result |",
        "|---|---|",
        f"| calls placed (a / b) / refused | {placed['a']} / {placed['b']} / {len(run.refused)} |",
        f"| POST /calls/outbound p50 / p95 / max ms | {stats(run.place_ms).replace('|', '/')} |",
        f"| all {total} in-progress after | {run.all_up_s:.1f} s |",
        f"| lost (not in-progress once all were up and {run.hold:g} s had passed) | "
        f"{len(run.lost)} |",
        "| owner not the placing node, or not one channel at the PBX | "
        f"{len(run.owner_mismatch)} |",
        f"| placing node → its channel's ARI application | {dict(run.apps)} |",
        f"| commands not answered 200 | {sum(run.failed_commands.values())} |",
        f"| calls whose events lack a command or show one twice | {len(run.not_carried_once)} |",
        f"| all ended after end-call through the other node | {run.ended_s:.1f} s |",
        f"| end status / reason | {dict(run.end_reasons)} |",
        f"| channels or bridges left at the PBX | {run.left_at_pbx} |",
        f"| tracebacks in the nodes' logs (a / b) | "
        f"{run.tracebacks.get('a', -1)} / {run.tracebacks.get('b', -1)} |",
        "",
        "Round trip of `POST /calls/{id}/control` (`inject-context`, no reply asked; "
        "`end-call` last), measured by the client:",
        "",
        "| path | commands | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for label, values in sorted(run.times.items()):
        lines.append(f"| {label} | {len(values)} | {stats(values)} |")
    lines += [
        "",
        "CPU by phase, in % of one core (the machine has "
        f"{os.cpu_count()}: {100 * (os.cpu_count() or 1)}% is all of it; the whole machine's "
        "count includes other work):",
        "",
        f"| phase | seconds | node a | node b | {' | '.join(OTHERS)} | whole machine |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (_, t0, used0), (phase, t1, used1) in itertools.pairwise(run.phases):
        share = [100 * (used1[k] - used0[k]) / (t1 - t0) for k in ("a", "b", *OTHERS, "machine")]
        lines.append(
            f"| {phase} | {t1 - t0:.1f} | " + " | ".join(f"{x:.0f}%" for x in share) + " |"
        )
    if run.why_lost:
        lines += ["", f"Lost calls: {dict(run.why_lost)}"]
    if run.refused:
        lines += ["", f"First refusal: {run.refused[0][:300]}"]
    if run.failed_commands:
        lines += ["", f"Failed commands: {dict(run.failed_commands.most_common(3))}"]
    lines += ["", f"Load average at the end: {load}", ""]
    return "\n".join(lines)


@contextmanager
def lab_asterisk(ports: int) -> Iterator[LabAsterisk]:
    settings = LabSettings(instance=f"bench-{os.getpid()}").with_free_ports()
    # Each call holds two RTP streams at the lab (voicedock's leg to the carrier and the far
    # end's), two ports each: the tests' 200 ports carry 50 calls, ``ports`` carry more.
    base = free_port_range(ports)
    settings = replace(settings, rtp_start=base, rtp_end=base + ports - 1)
    lab = LabAsterisk(settings, verbose=False)
    try:
        lab.up(timeout=60)
        yield lab
    finally:
        lab.down()
        shutil.rmtree(settings.instance_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50, help="calls through each node")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--sequential", type=int, default=40)
    parser.add_argument("--hold", type=float, default=20.0, help="seconds all calls stay up")
    args = parser.parse_args()
    run = Run(args.calls, args.hold)
    server, stop = start_postgres()
    try:
        with lab_asterisk(8 * args.calls + 200) as lab, tempfile.TemporaryDirectory() as workdir:
            dsn = asyncio.run(fresh_database(server))
            try:
                asyncio.run(
                    bench(lab, dsn, Path(workdir), run, args.rounds, args.sequential, args.hold)
                )
            finally:
                for name in NODES:  # kept for a look at what went wrong
                    log = Path(workdir) / f"{name}.log"
                    if log.exists():
                        shutil.copy(log, Path(tempfile.gettempdir()) / f"two_nodes-{name}.log")
    finally:
        stop()
    command = (
        f".venv/bin/python bench/two_nodes.py --calls {args.calls} --rounds {args.rounds} "
        f"--sequential {args.sequential} --hold {args.hold:g}"
    )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = report(run, command, load)
    print(text)
    out = Path(__file__).parent / "results"
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    (out / f"two_nodes-{day}.md").write_text(text)


if __name__ == "__main__":
    main()
