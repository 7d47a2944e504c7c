"""What the egress guard costs a provider's request: the check a guarded session's middleware
makes of every request (an IP-literal URL, as a local provider's; a DNS name, as a hosted
one's) and the check its resolver makes of every new connection's DNS answer (a stand-in DNS
answering at once with an IPv4 and an IPv6 address). CPU time of the measuring thread per
check, in batches; ``--compare REV`` measures the guard of the git revision ``REV`` (its
``src``, extracted to a temporary directory) in the same run, the two taking turns, each in
its own process. Not a test.

    .venv/bin/python bench/egress_guard.py [--batches 200] [--compare main] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BATCH = 200  # checks per batch: one batch's CPU time over BATCH is one sample
CASES = {
    "request, IP-literal URL": "http://127.0.0.1:8080/v1/chat/completions",
    "request, DNS name": "https://api.openai.com/v1/audio/speech",
    "connection, DNS answer": "api.openai.com",
}


def drive(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run a coroutine that never waits (the stand-ins answer at once) to its end."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise RuntimeError("the check waited")


def measure(batches: int) -> dict[str, list[float]]:
    """µs per check, one value per batch, for each case (the guard on ``sys.path``)."""
    from yarl import URL

    from voicedock.egress.guard import EgressPolicy, GuardedResolver, NetworkTarget, literal_guard

    async def dns(host: str, port: int) -> list[str]:
        return ["104.18.6.192", "2606:4700::6812:6c0"]

    async def handler(request: Any) -> None:
        return None

    class Request:
        def __init__(self, url: str) -> None:
            self.url = URL(url)

    # The lab's policy: loopback allowed (stand-ins on 127.0.0.1), the PBX's ports blocked.
    policy = EgressPolicy(
        allow_loopback=True,
        blocked=(NetworkTarget.parse("10.0.0.5", 5038), NetworkTarget.parse("10.0.0.5", 8088)),
    )
    guard = literal_guard(policy, dns)
    resolver = GuardedResolver(policy, dns)
    checks = {
        "request, IP-literal URL": lambda: drive(
            guard(Request(CASES["request, IP-literal URL"]), handler)
        ),
        "request, DNS name": lambda: drive(guard(Request(CASES["request, DNS name"]), handler)),
        "connection, DNS answer": lambda: drive(
            resolver.resolve(CASES["connection, DNS answer"], 443, socket.AF_INET)
        ),
    }
    out: dict[str, list[float]] = {case: [] for case in checks}
    for _ in range(batches):
        for case, check in checks.items():
            start = time.thread_time_ns()
            for _ in range(BATCH):
                check()
            out[case].append((time.thread_time_ns() - start) / BATCH / 1e3)
    return out


def run(src: Path, batches: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--measure", "--batches", str(batches)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, list[float]] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", metavar="REV")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.batches)))
        return
    now = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": ROOT / "src"}
        if args.compare:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.compare, "src"],
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            trees = {
                f"{args.compare} (before)": Path(tmp) / "src",
                "this tree (after)": ROOT / "src",
            }
        costs: dict[str, dict[str, list[float]]] = {name: {c: [] for c in CASES} for name in trees}
        for _ in range(args.rounds):
            for name, src in trees.items():
                for case, values in run(src, args.batches).items():
                    costs[name][case] += values
    compare = f" --compare {args.compare}" if args.compare else ""
    lines = [
        f"# Egress guard cost — {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}",
        f"Command: `.venv/bin/python bench/egress_guard.py --batches {args.batches} "
        f"--rounds {args.rounds}{compare}`",
        f"CPU time per check: the mean of each batch of {BATCH}, {args.batches} batches a "
        f"round, {args.rounds} rounds, the trees in turn.",
        "",
        "| check | guard | p50 (µs) | p95 (µs) |",
        "|---|---|---|---|",
    ]
    for case in CASES:
        for name in trees:
            p50, p95 = np.percentile(costs[name][case], [50, 95])
            lines.append(f"| {case} | {name} | {p50:.2f} | {p95:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        out = Path(__file__).parent / "results" / f"egress_guard-{now:%Y-%m-%d}.md"
        out.write_text(text)


if __name__ == "__main__":
    main()
