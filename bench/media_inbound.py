"""What does receiving one inbound audio message cost: aiohttp's websocket vs a lean parser?

N connections to the load generator of bench/media_load.py (its own process and core), each
receiving 50 µ-law frames/s and doing nothing with them but counting, on one event loop:

* ``aiohttp``: ``ClientSession.ws_connect`` and ``async for message in ws`` per connection
  (what ``MediaSession`` does: a task woken per message);
* ``lean``: a raw asyncio protocol parsing the frames in ``data_received`` (no task, no queue).

Reports CPU µs per message (process time / messages over the window) for each, side by side.
Usage: .venv/bin/python bench/media_inbound.py [--n 500] [--window 5] [--loop asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from media_load import generator_main, new_loop, open_reference, pin


async def aiohttp_receivers(port: int, conn: Connection, n: int, window: float) -> float:
    received = 0
    sockets: list[aiohttp.ClientWebSocketResponse] = []

    async def receive(http: aiohttp.ClientSession, index: int) -> None:
        nonlocal received
        url = f"ws://127.0.0.1:{port}/media/a{index}"
        async with http.ws_connect(url, protocols=("media",)) as ws:
            sockets.append(ws)
            async for message in ws:
                if message.type is aiohttp.WSMsgType.BINARY:
                    received += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http, asyncio.TaskGroup() as tg:
        for i in range(n):
            tg.create_task(receive(http, i))
        await asyncio.sleep(max(2.0, n / 200))
        per_message = await measure(conn, window, lambda: received)
        async with asyncio.timeout(10):
            await asyncio.gather(*(ws.close() for ws in sockets))
    return per_message


async def lean_receivers(port: int, conn: Connection, n: int, window: float) -> float:
    limit = asyncio.Semaphore(100)

    async def open_one(index: int) -> object:
        async with limit:
            return await open_reference(port, f"/media/l{index}", None)

    opened = await asyncio.gather(*(open_one(i) for i in range(n)))
    connections = [protocol for _, protocol in opened]  # type: ignore[misc]
    for c in connections:
        c.decode = False
    await asyncio.sleep(1.0)
    per_message = await measure(conn, window, lambda: sum(c.inbound_frames for c in connections))
    for transport, _ in opened:  # type: ignore[misc]
        transport.close()
    return per_message


async def measure(conn: Connection, window: float, count: object) -> float:
    assert callable(count)
    before = count()
    cpu0 = time.process_time()
    await asyncio.sleep(window)
    cpu = time.process_time() - cpu0
    messages = count() - before
    conn.send("quiet")
    await asyncio.sleep(0.2)
    conn.send("resume")
    return cpu / max(messages, 1) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--loop", default="asyncio")
    parser.add_argument("--media-core", type=int, default=0)
    parser.add_argument("--generator-core", type=int, default=1)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(16384, hard), hard))
    cores = pin(args.media_core)
    parent, child = mp.Pipe()
    generator = mp.get_context("spawn").Process(
        target=generator_main, args=(child, args.generator_core, "uvloop")
    )
    generator.start()
    try:
        port, generator_cores = parent.recv()
        results = {}
        for mode, step in (("aiohttp", aiohttp_receivers), ("lean", lean_receivers)):
            with asyncio.Runner(loop_factory=lambda: new_loop(args.loop)) as runner:
                results[mode] = runner.run(step(port, parent, args.n, args.window))
        print(
            f"N={args.n} loop={args.loop} media core {cores}, generator core {generator_cores}: "
            f"aiohttp {results['aiohttp']:.1f} µs/message, lean {results['lean']:.1f} µs/message"
        )
    finally:
        parent.send("stop")
        generator.join(5)
        if generator.is_alive():
            generator.terminate()


if __name__ == "__main__":
    main()
