"""Round trip of control commands sent to another node (``calls/nodes/command_relay``).

Two nodes (``Service``s) in one process on a private PostgreSQL (``tests/pg_server``), over
fake PBXs: ``--calls`` answered calls owned by node a, each with a recording conversation; then
``--rounds`` rounds in which every call gets one ``say`` at once, sent to node a (direct) or to
node b (through the database), alternating. Reports p50/p95/max per path and checks that every
``say`` reached its call's conversation exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from api.test_control_api import RecordingLiveCall
from calls.nodes.test_lease import node_settings
from calls.test_recovery import ACME_ID, LeftoverFakePbx, PbxLegs, place
from pg_server import fresh_database, start_postgres
from voicedock.calls.control import Say
from voicedock.config import Settings
from voicedock.service import Service


def settings(dsn: str, node_id: str, calls: int) -> Settings:
    s = node_settings(dsn, node_id)
    s.node.lease_seconds = 10
    for number in s.numbers:
        number.max_concurrent_calls = calls
    return s


async def run(dsn: str, calls: int, rounds: int) -> dict[str, list[float]]:
    world = PbxLegs()
    a_pbx = LeftoverFakePbx(world)
    a = await Service.open(settings(dsn, "a", calls), pbx=a_pbx)
    b = await Service.open(settings(dsn, "b", calls), pbx=LeftoverFakePbx(world))
    try:
        await a.node.commands.listening.wait()
        await b.node.commands.listening.wait()
        lives: dict[str, RecordingLiveCall] = {}
        for _ in range(calls):
            call_id = await place(a.engine)
            await a_pbx.answer(call_id)
            lives[call_id] = RecordingLiveCall()
            a.engine.records.attach(call_id, lives[call_id])
        times: dict[str, list[float]] = {"direct (node a)": [], "through node b": []}

        async def say(via: Service, label: str, call_id: str, text: str) -> None:
            began = time.perf_counter()
            await via.node.control(ACME_ID, call_id, Say(text))
            times[label].append((time.perf_counter() - began) * 1000)

        for n in range(rounds):
            via, label = (a, "direct (node a)") if n % 2 == 0 else (b, "through node b")
            async with asyncio.TaskGroup() as tg:
                for call_id in lives:
                    tg.create_task(say(via, label, call_id, f"{call_id}-{n}"))
        for call_id, live in lives.items():
            assert live.said == [f"{call_id}-{n}" for n in range(rounds)], call_id
        return times
    finally:
        await b.aclose()
        await a.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    server, stop = start_postgres()
    try:
        dsn = asyncio.run(fresh_database(server))
        times = asyncio.run(run(dsn, args.calls, args.rounds))
    finally:
        stop()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{args.calls} calls on node a, {args.rounds} rounds of one say per call at once")
    print("| path | commands | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|")
    for label, values in times.items():
        values.sort()
        p95 = values[int(len(values) * 0.95) - 1]
        print(
            f"| {label} | {len(values)} | {statistics.median(values):.1f} | {p95:.1f} "
            f"| {values[-1]:.1f} |"
        )
    print("every say reached its call's conversation once, in order")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
