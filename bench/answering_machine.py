"""Answering-machine detection: accuracy and decision time over generated greetings.

    .venv/bin/python bench/answering_machine.py [--out bench/results/answering_machine-<date>.md]

Machine greetings (4 texts x espeak-ng voices x speeds x beep at 440/1000/1800 Hz or none) and
person greetings (4 short greetings, then silence), 8 kHz as on a µ-law call, fed in 20 ms
frames to ``AnsweringMachineDetector`` with its default settings. Reported: the verdicts
(accuracy per class), when the verdict came (ms of callee audio), and for machines with a
beep how far after the beep's end the message would start. The baseline, side by side, is the
same detector with the classic (Asterisk AMD) after-greeting silence of 800 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from voicedock.pipeline.hearing.answering_machine import (
    AmdConfig,
    AmdDecision,
    AnsweringMachineDetector,
    GreetingEnded,
)
from voicedock_lab.greetings import (
    MACHINE_TEXTS,
    PERSON_TEXTS,
    Voice,
    machine_greeting,
    person_hello,
)

RATE = 8000
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-us+m3", "en-029")
SPEEDS = (130, 165, 200)
BEEPS = (None, 440.0, 1000.0, 1800.0)


@dataclasses.dataclass
class Outcome:
    kind: str  # machine / human (the truth)
    result: str
    decided_ms: int
    message_after_beep_ms: float | None = None


def run(audio: bytes, config: AmdConfig) -> tuple[AmdDecision, GreetingEnded | None]:
    detector = AnsweringMachineDetector(config, wait_for_greeting=True)
    decision, ended = None, None
    for start in range(0, len(audio), 320):
        for event in detector.process(audio[start : start + 320]):
            if isinstance(event, AmdDecision):
                decision = event
            else:
                ended = event
    assert decision is not None
    return decision, ended


def corpus() -> list[tuple[str, bytes, float | None]]:
    items: list[tuple[str, bytes, float | None]] = []
    for name in VOICES:
        for wpm in SPEEDS:
            voice = Voice(name, wpm)
            for text in MACHINE_TEXTS:
                for beep_hz in BEEPS:
                    audio, end_s = machine_greeting(text, voice, RATE, beep_hz=beep_hz)
                    items.append(("machine", audio, end_s if beep_hz else None))
            for text in PERSON_TEXTS:
                items.append(("human", person_hello(text, voice, RATE), None))
    return items


def measure(items: list[tuple[str, bytes, float | None]], config: AmdConfig) -> list[Outcome]:
    outcomes = []
    for kind, audio, beep_end_s in items:
        decision, ended = run(audio, config)
        after = None
        if beep_end_s is not None and ended is not None and ended.beep:
            after = ended.at_ms - beep_end_s * 1000
        outcomes.append(Outcome(kind, decision.result, decision.decided_at_ms, after))
    return outcomes


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.0f}" if values else "-"


def table(columns: dict[str, list[Outcome]]) -> str:
    names = list(columns)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label: str, cell: object) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(columns[n]) for n in names) + " |")  # type: ignore[operator]

    for kind in ("machine", "human"):

        def accuracy(outs: list[Outcome], kind: str = kind) -> str:
            mine = [o for o in outs if o.kind == kind]
            right = sum(o.result == kind for o in mine)
            return f"{right}/{len(mine)} ({100 * right / len(mine):.1f} %)"

        def verdicts(outs: list[Outcome], kind: str = kind) -> str:
            seen = Counter(o.result for o in outs if o.kind == kind)
            return ", ".join(f"{k} {v}" for k, v in sorted(seen.items()))

        def decided(outs: list[Outcome], kind: str = kind) -> str:
            times = [float(o.decided_ms) for o in outs if o.kind == kind]
            return f"{pct(times, 50)} / {pct(times, 95)} / {max(times):.0f}"

        row(f"{kind}: right", accuracy)
        row(f"{kind}: verdicts", verdicts)
        row(f"{kind}: verdict at, ms (p50 / p95 / max)", decided)

    def beep_gap(outs: list[Outcome]) -> str:
        gaps = [o.message_after_beep_ms for o in outs if o.message_after_beep_ms is not None]
        if not gaps:
            return "-"
        return f"{pct(gaps, 50)} / {pct(gaps, 95)} / {max(gaps):.0f} (n={len(gaps)})"

    row("beep end → message start, ms (p50 / p95 / max)", beep_gap)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    items = corpus()
    synthesized = time.perf_counter() - started
    columns = {
        "voicedock (after-greeting silence 1000 ms)": measure(items, AmdConfig()),
        "baseline: 800 ms (Asterisk AMD default)": measure(
            items, AmdConfig(after_greeting_silence_ms=800)
        ),
    }
    audio_s = sum(len(a) for _, a, _ in items) / (2 * RATE)
    cpu = time.perf_counter() - started - synthesized
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    machine = (
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, "
        f"Python {platform.python_version()}; load average at the end {load} (shared machine)."
    )
    corpus_line = (
        f"Corpus (`voicedock_lab.greetings`, espeak-ng, 8 kHz): {len(items)} greetings, "
        f"{audio_s:.0f} s of audio; machines: {len(MACHINE_TEXTS)} texts x {len(VOICES)} voices "
        f"({', '.join(VOICES)}) x {len(SPEEDS)} speeds ({', '.join(map(str, SPEEDS))} wpm) x "
        "beep {none, 440, 1000, 1800 Hz} (400 ms, 300 ms after the greeting); persons: "
        f"{len(PERSON_TEXTS)} greetings ({', '.join(PERSON_TEXTS)}) x the same voices and "
        "speeds, then 4 s of silence."
    )
    speed = (
        f"Both detectors ran in {cpu:.1f} s of wall time for {2 * audio_s:.0f} s of audio "
        f"({2 * audio_s / cpu:.0f}x real time on one core)."
    )
    command = f"`.venv/bin/python bench/answering_machine.py --out {args.out or '-'}`"
    report = (
        f"# Answering-machine detection benchmark, {when}\n\n{machine}\nCommand: {command}\n"
        f"{corpus_line}\n{speed}\n\n{table(columns)}\n"
    )
    if args.out is not None:
        args.out.write_text(report)
    sys.stdout.write(report)


if __name__ == "__main__":
    main()
