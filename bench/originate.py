"""Originate benchmark against a private lab Asterisk on 127.0.0.1.

Measures, over N calls to the lab's Echo number:
  * originate() call -> request accepted by Asterisk (ARI POST 200 / AMI "queued") p50/p95
  * originate() call -> StasisStart (ANSWERED event) p50/p95
  * sustained originate rate with every call answered (target >= 50/s)

Each call is hung up as soon as it is answered. Usage:
    .venv/bin/python bench/originate.py [--calls 200] [--rate 50] [--via ari|ami]
Writes bench/results/originate-<via>-<date>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import shutil
import statistics
import time
import uuid
from pathlib import Path

from voicedock.config import AsteriskSettings
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.base import OriginateRequest, PbxEvent, PbxEventKind
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings

ECHO = "+31612345670"


class Timeline:
    def __init__(self) -> None:
        self.answered: dict[str, float] = {}
        self.hungup: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.accepted: dict[str, float] = {}
        self.pbx: AsteriskPbx | None = None
        self.all_answered = asyncio.Event()
        self.expected = 0

    async def __call__(self, event: PbxEvent) -> None:
        now = time.perf_counter()
        if event.kind is PbxEventKind.ANSWERED:
            self.answered[event.call_id] = now
            if len(self.answered) >= self.expected:
                self.all_answered.set()
            assert self.pbx is not None
            await self.pbx.hangup(event.call_id)
        elif event.kind is PbxEventKind.HANGUP:
            self.hungup[event.call_id] = now


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(lab: LabAsterisk, calls: int, rate: float, via: str) -> dict[str, float]:
    ari_user, ari_password = lab.ari_credentials
    ami_user, ami_secret = lab.ami_credentials
    settings = AsteriskSettings(
        ari_url=lab.ari_url,
        ari_user=ari_user,
        ari_password=ari_password,
        app=lab.settings.app_name,
        ami_host=lab.ami_host,
        ami_port=lab.ami_port,
        ami_user=ami_user,
        ami_secret=ami_secret,
        originate_via="ami" if via == "ami" else "ari",
    )
    timeline = Timeline()
    timeline.expected = calls
    pbx = AsteriskPbx(settings)
    timeline.pbx = pbx
    await pbx.start(timeline)
    try:
        await pbx.ari.wait_registered(10)
        if pbx.ami is not None:
            await pbx.ami.wait_connected(10)

        async def place(call_id: str) -> None:
            timeline.started[call_id] = time.perf_counter()
            await pbx.originate(
                OriginateRequest(call_id, ECHO, "+31850835037", "carrier", timeout_seconds=20)
            )
            timeline.accepted[call_id] = time.perf_counter()

        interval = 1.0 / rate
        began = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for i in range(calls):
                delay = began + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tg.create_task(place(f"bench-{uuid.uuid4().hex[:12]}"))
        last_sent = time.perf_counter()
        async with asyncio.timeout(60):
            await timeline.all_answered.wait()
        finished = time.perf_counter()
        await asyncio.sleep(2.0)
    finally:
        await pbx.aclose()
    accept = [(timeline.accepted[c] - timeline.started[c]) * 1000 for c in timeline.accepted]
    answer = [(timeline.answered[c] - timeline.started[c]) * 1000 for c in timeline.answered]
    return {
        "calls": calls,
        "answered": len(timeline.answered),
        "hungup": len(timeline.hungup),
        "accept_p50": statistics.median(accept),
        "accept_p95": pct(accept, 0.95),
        "answer_p50": statistics.median(answer),
        "answer_p95": pct(answer, 0.95),
        "send_rate": calls / (last_sent - began),
        "answered_rate": len(timeline.answered) / (finished - began),
    }


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs ({model}), "
        f"{platform.platform()}, Python {platform.python_version()}"
    )


def report(r: dict[str, float], via: str, rate: float) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    ok = "yes" if r["answered"] == r["calls"] else "NO"
    rows = [
        (
            "calls placed / answered / hangup reported",
            f"{r['calls']:.0f} / {r['answered']:.0f} / {r['hungup']:.0f}",
        ),
        (
            "originate() → accepted by Asterisk (on the wire, reply received) p50 / p95",
            f"{r['accept_p50']:.1f} / {r['accept_p95']:.1f} ms",
        ),
        (
            "originate() → StasisStart (ANSWERED) p50 / p95",
            f"{r['answer_p50']:.1f} / {r['answer_p95']:.1f} ms",
        ),
        (f"offered originate rate (target {rate:.0f}/s)", f"{r['send_rate']:.1f} calls/s"),
        ("sustained rate, all calls answered", f"{r['answered_rate']:.1f} calls/s"),
        ("every call answered", ok),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    command = f"bench/originate.py --calls {r['calls']:.0f} --rate {rate:.0f} --via {via}"
    return (
        f"# Originate benchmark ({via.upper()}), {now}\n\n"
        f"Machine: {machine()}\n"
        "Asterisk: lab instance (Debian testing chroot), everything on 127.0.0.1; callee = lab\n"
        "Echo number, each call hung up by voicedock as soon as it was answered.\n\n"
        f"| metric | value |\n|---|---|\n{table}\n\n"
        f"Command: `.venv/bin/python {command}`\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--via", choices=("ari", "ami"), default="ari")
    args = parser.parse_args()
    settings = LabSettings(instance=f"bench-{os.getpid()}").with_free_ports()
    lab = LabAsterisk(settings, verbose=False)
    try:
        lab.up(timeout=60)
        result = asyncio.run(run(lab, args.calls, args.rate, args.via))
    finally:
        lab.down()
        shutil.rmtree(settings.instance_dir, ignore_errors=True)
    text = report(result, args.via, args.rate)
    print(text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    (out / f"originate-{args.via}-{day}.md").write_text(text)


if __name__ == "__main__":
    main()
