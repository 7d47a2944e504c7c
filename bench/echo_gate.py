"""What the echo gate costs per 20 ms frame: ``Listener.process`` with the gate on an echoing
line (the assistant's words returned 120 ms late at -12 dB) against the same line with the gate
disabled, at 8 and 16 kHz. With ``--compare``, also the gate's direct reference correlation
(``tests/pipeline/echo_reference.py``: the sent audio transformed anew for every frame) in the
same run: the before and after of the correlation, with the frames each decided to be echo.
Cost is the thread's CPU time per frame, which other work on the machine disturbs less than
the wall clock; the configurations take turns, ``--rounds`` times. Not a test.

    .venv/bin/python bench/echo_gate.py [--seconds 20] [--rounds 3] [--compare] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pipeline.echo_reference import ReferenceEchoGate
from pipeline.synth import espeak
from voicedock.pipeline.hearing.echo import EchoGateConfig
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.listener import Listener

TEXT = (
    "Hello and welcome to the city library. Our opening hours are from nine in the morning "
    "until six in the evening, from Monday to Saturday, and on Sunday we are closed."
)
GATES = {
    "off": "off (baseline)",
    "reference": "on, direct correlation (before)",
    "on": "on",
}


def run(rate: int, seconds: int, gate: str) -> tuple[list[float], int, int]:
    """CPU µs per frame, the barge-ins and the frames decided to be echo."""
    said = espeak(TEXT, rate)
    if said is None:
        raise SystemExit("espeak-ng is needed")
    sent = np.tile(np.frombuffer(said, "<i2"), seconds * rate // (len(said) // 2) + 1)
    sent = sent[: seconds * rate]
    delay = rate * 120 // 1000
    line = np.concatenate((np.zeros(delay), sent[:-delay])) * 10 ** (-12 / 20)
    inbound = np.rint(line).astype("<i2").tobytes()
    config = EchoGateConfig(enabled=gate != "off")
    listener = Listener(
        rate,
        endpointing=EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None),
        echo=config,
    )
    if gate == "reference":
        listener.echo = ReferenceEchoGate(rate, config)
    listener.echo.play(sent.astype("<i2").tobytes())
    size = rate * 20 // 1000 * 2
    costs: list[float] = []
    barge_ins = echoes = 0
    correlation = -1.0
    for i in range(0, len(inbound) - size + 1, size):
        t0 = time.thread_time_ns()
        events = listener.process(inbound[i : i + size], assistant_audible=True)
        costs.append((time.thread_time_ns() - t0) / 1e3)
        barge_ins += sum(type(e).__name__ == "Interruption" for e in events)
        if listener.echo.last_correlation != correlation:  # a correlation ran on this frame
            correlation = listener.echo.last_correlation
            echoes += correlation >= config.correlation
    return costs, barge_ins, echoes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    gates = ["off", "reference", "on"] if args.compare else ["off", "on"]
    now = dt.datetime.now(dt.UTC)
    command = f"bench/echo_gate.py --seconds {args.seconds} --rounds {args.rounds}"
    lines = [
        f"# Echo gate cost — {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"load {os.getloadavg()[0]:.2f}",
        f"Command: `.venv/bin/python {command}{' --compare' if args.compare else ''}`",
        f"Line: {args.seconds} s of the assistant's speech echoed 120 ms late at -12 dB; "
        f"the thread's CPU time per 20 ms frame over {args.rounds} rounds, the gates in turn.",
        "",
        "| rate | gate | CPU per frame p50 (µs) | p95 (µs) | max (µs) | mean (µs) "
        "| barge-ins | frames decided echo |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rate in (8000, 16000):
        costs: dict[str, list[float]] = {gate: [] for gate in gates}
        decided: dict[str, tuple[int, int]] = {}
        for _ in range(args.rounds):
            for gate in gates:
                cost, barge_ins, echoes = run(rate, args.seconds, gate)
                costs[gate] += cost
                decided[gate] = (barge_ins, echoes)
        for gate in gates:
            p50, p95 = np.percentile(costs[gate], [50, 95])
            lines.append(
                f"| {rate} | {GATES[gate]} | {p50:.0f} | {p95:.0f} | {max(costs[gate]):.0f} "
                f"| {np.mean(costs[gate]):.0f} | {decided[gate][0]} | {decided[gate][1]} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        out = Path(__file__).parent / "results" / f"echo_gate-{now:%Y-%m-%d}.md"
        out.write_text(text)


if __name__ == "__main__":
    main()
