"""What the echo gate costs per 20 ms frame: ``Listener.process`` with the gate on an echoing
line (the assistant's words returned 120 ms late at -12 dB) against the same line with the gate
disabled, at 8 and 16 kHz. Not a test.

    .venv/bin/python bench/echo_gate.py [--seconds 20] [--write]
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

from pipeline.synth import espeak
from voicedock.pipeline.echo import EchoGateConfig
from voicedock.pipeline.endpointing import EndpointingConfig
from voicedock.pipeline.listener import Listener

TEXT = (
    "Hello and welcome to the city library. Our opening hours are from nine in the morning "
    "until six in the evening, from Monday to Saturday, and on Sunday we are closed."
)


def run(rate: int, seconds: int, enabled: bool) -> tuple[list[float], int]:
    said = espeak(TEXT, rate)
    if said is None:
        raise SystemExit("espeak-ng is needed")
    sent = np.tile(np.frombuffer(said, "<i2"), seconds * rate // (len(said) // 2) + 1)
    sent = sent[: seconds * rate]
    delay = rate * 120 // 1000
    line = np.concatenate((np.zeros(delay), sent[:-delay])) * 10 ** (-12 / 20)
    inbound = np.rint(line).astype("<i2").tobytes()
    listener = Listener(
        rate,
        endpointing=EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None),
        echo=EchoGateConfig(enabled=enabled),
    )
    listener.echo.play(sent.astype("<i2").tobytes())
    size = rate * 20 // 1000 * 2
    costs: list[float] = []
    barge_ins = 0
    for i in range(0, len(inbound) - size + 1, size):
        t0 = time.perf_counter()
        events = listener.process(inbound[i : i + size], assistant_audible=True)
        costs.append((time.perf_counter() - t0) * 1e6)
        barge_ins += sum(type(e).__name__ == "Interruption" for e in events)
    return costs, barge_ins


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    now = dt.datetime.now(dt.UTC)
    lines = [
        f"# Echo gate cost — {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}",
        f"Command: `.venv/bin/python bench/echo_gate.py --seconds {args.seconds}`",
        f"Line: {args.seconds} s of the assistant's speech echoed 120 ms late at -12 dB.",
        "",
        "| rate | gate | per frame p50 (µs) | p95 (µs) | max (µs) | barge-ins |",
        "|---|---|---|---|---|---|",
    ]
    for rate in (8000, 16000):
        for enabled in (False, True):
            costs, barge_ins = run(rate, args.seconds, enabled)
            p50, p95 = np.percentile(costs, [50, 95])
            gate = "on" if enabled else "off (baseline)"
            lines.append(
                f"| {rate} | {gate} | {p50:.0f} | {p95:.0f} | {max(costs):.0f} | {barge_ins} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        out = Path(__file__).parent / "results" / f"echo_gate-{now:%Y-%m-%d}.md"
        out.write_text(text)


if __name__ == "__main__":
    main()
