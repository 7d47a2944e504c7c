"""A campaign of ``--contacts`` contacts at ``max_cps = --cps`` against the lab Asterisk.

A private PostgreSQL (``tests/pg_server``), a private lab Asterisk and one service process
(``tests/nodes/node_process``: fake speech) whose trunk has ``max_cps = --cps`` and
``max_channels = --channels``. One ``POST /campaigns`` carries every contact: a share
``--answered`` to the lab's party that answers and hangs up after 1 s, the rest to its busy
line (so most calls cost their dial, not media). An AMI session of the bench's own counts the
trunk's new channels at Asterisk's clock (``timestampevents``). Reported:

* achieved calls per second (trunk channels over the span from the first to the last) against
  the cap, and the most new trunk channels in any one second (must not exceed the cap), and
  at once (must not exceed ``--channels``);
* dialer overhead per call: from the call's record (``created_at``, when the dialer claimed
  the contact) to its channel at the PBX (claim, limits, insert, commit, ARI originate);
* the node's and PostgreSQL's CPU per call.

Usage: ``.venv/bin/python bench/campaign.py [--contacts 2000] [--cps 50] [--channels 60]
[--answered 0.1]``; writes ``bench/results/campaign-<date>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from originate import machine, pct  # bench/, beside this script
from two_nodes import cpu_seconds, lab_asterisk, postmaster

from deploy.test_compose_as_shipped import get_json, wait_healthy
from e2e.trunk_observer import observe_trunk
from fakes.world import SUPPORT_ID
from nodes.node_process import acme_api_key, node_process
from nodes.test_nodes_lab import node_config
from pg_server import free_port, fresh_database, start_postgres
from voicedock_lab.server import LabAsterisk

ANSWERS = "+31610000200"
BUSY = "+31610000486"


async def bench(
    lab: LabAsterisk, dsn: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    port = free_port()
    config = node_config(
        workdir / "a.toml", node_id="a", database=dsn, port=port, lab=lab, max_calls=1000
    )
    trunk_table = '[[trunks]]\nname = "carrier"\nendpoint = "carrier"'
    limits = f"\nmax_cps = {args.cps}\nmax_channels = {args.channels}"
    config.write_text(config.read_text().replace(trunk_table, trunk_table + limits))
    every = round(1 / args.answered) if args.answered > 0 else 0  # every n-th contact answers
    contacts = [
        {"destination": ANSWERS if every and i % every == 0 else BUSY, "variables": {"n": str(i)}}
        for i in range(args.contacts)
    ]
    base = f"http://127.0.0.1:{port}"
    log = workdir / "a.log"
    result: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http, observe_trunk(lab, "carrier") as trunk:
        with node_process(config, log) as node:
            await wait_healthy(http, base, node, log)
            key = await acme_api_key(dsn)
            headers = {"Authorization": f"Bearer {key}"}
            pg = await postmaster(dsn)
            cpu0 = (cpu_seconds(node.pid), cpu_seconds(pg, children=True))
            began = time.monotonic()
            body = {"name": "Bench", "assistant_id": SUPPORT_ID, "contacts": contacts}
            async with http.post(f"{base}/campaigns", json=body, headers=headers) as resp:
                assert resp.status == 201, await resp.text()
                campaign_id = (await resp.json())["id"]
            created_s = time.monotonic() - began
            while True:
                found = await get_json(http, f"{base}/campaigns/{campaign_id}", key)
                if found["status"] == "finished":
                    break
                await asyncio.sleep(0.5)
            elapsed = time.monotonic() - began
            cpu1 = (cpu_seconds(node.pid), cpu_seconds(pg, children=True))
            calls: list[dict[str, Any]] = []
            offset = 0
            while True:
                page = await get_json(http, f"{base}/calls?limit=1000&offset={offset}", key)
                calls += page["calls"]
                offset += 1000
                if offset >= page["pagination"]["total"]:
                    break
        await asyncio.sleep(1)
    overhead = []
    for call in calls:
        at_pbx = trunk.by_id.get(call["id"])
        if at_pbx is not None:
            stored = dt.datetime.fromisoformat(call["created_at"].replace("Z", "+00:00"))
            overhead.append((at_pbx - stored.timestamp()) * 1000)
    span = max(trunk.created) - min(trunk.created)
    result.update(
        contacts=args.contacts,
        answered_share=args.answered,
        create_s=created_s,
        elapsed_s=elapsed,
        channels=len(trunk.created),
        calls=len(calls),
        achieved_cps=(len(trunk.created) - 1) / span if span > 0 else 0.0,
        max_in_second=trunk.max_in_any_second(),
        most_at_once=trunk.most_at_once,
        overhead=overhead,
        outcomes=Counter(found["progress"]["by_outcome"]),
        node_cpu_ms=(cpu1[0] - cpu0[0]) * 1000 / max(1, len(calls)),
        pg_cpu_ms=(cpu1[1] - cpu0[1]) * 1000 / max(1, len(calls)),
    )
    return result


def report(r: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    o = r["overhead"]
    lines = [
        f"# Campaign: {r['contacts']} contacts at max_cps = {args.cps}, {now}",
        "",
        f"Machine: {machine()} (shared: other work ran meanwhile)",
        "PostgreSQL on 127.0.0.1 and a lab Asterisk, started for the run; one service process "
        "(fake speech) with the trunk limited to "
        f"max_cps = {args.cps}, max_channels = {args.channels}; "
        f"{r['answered_share']:.0%} of the contacts answer and hang up after 1 s, the rest are "
        "busy. New trunk channels counted by an AMI session of the bench's own, at Asterisk's "
        "clock.",
        "",
        f"Command: `{command}`",
        "",
        "| what | result |",
        "|---|---|",
        f"| contacts / calls stored / trunk channels at the PBX | {r['contacts']} / {r['calls']} "
        f"/ {r['channels']} |",
        f"| outcomes | {dict(r['outcomes'])} |",
        f"| POST /campaigns ({r['contacts']} contacts) | {r['create_s']:.2f} s |",
        f"| campaign finished after | {r['elapsed_s']:.1f} s |",
        f"| achieved CPS (first to last trunk channel) vs cap | {r['achieved_cps']:.1f} / "
        f"{args.cps} |",
        f"| most new trunk channels in any second (cap {args.cps}) | {r['max_in_second']} |",
        f"| most trunk channels at once (cap {args.channels}) | {r['most_at_once']} |",
        f"| dialer overhead per call, record → channel at the PBX, p50 / p95 / max ms | "
        f"{pct(o, 0.5):.1f} / {pct(o, 0.95):.1f} / {max(o):.1f} |",
        f"| CPU per call: node / PostgreSQL ms | {r['node_cpu_ms']:.2f} / {r['pg_cpu_ms']:.2f} |",
        "",
        f"Load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--cps", type=int, default=50)
    parser.add_argument("--channels", type=int, default=60)
    parser.add_argument("--answered", type=float, default=0.1)
    args = parser.parse_args()
    server, stop = start_postgres()
    try:
        with lab_asterisk(400) as lab, tempfile.TemporaryDirectory() as workdir:
            dsn = asyncio.run(fresh_database(server))
            result = asyncio.run(bench(lab, dsn, Path(workdir), args))
    finally:
        stop()
    command = (
        f".venv/bin/python bench/campaign.py --contacts {args.contacts} --cps {args.cps} "
        f"--channels {args.channels} --answered {args.answered:g}"
    )
    text = report(result, args, command)
    print(text)
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    (Path(__file__).parent / "results" / f"campaign-{day}.md").write_text(text)


if __name__ == "__main__":
    main()
