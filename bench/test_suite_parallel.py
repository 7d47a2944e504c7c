"""Whether a test suite's scenarios run in parallel: a suite of 20 scenarios against the time of
its longest scenario.

A private lab Asterisk and, per mode, a fresh ``voicedock serve`` process configured from
``voicedock.example.toml`` as a user runs it (SQLite, the offline voice: Piper and Whisper, the
example's "Customer Support" assistant, its facts given to the rule-based model through REST as
``tests/e2e/test_rehearsal_e2e.py`` does), ``[rehearsal] max_concurrent`` set per mode:

* ``parallel``: ``max_concurrent`` = 20, the whole suite at once;
* ``serial``: ``max_concurrent`` = 1, one scenario after the other (the baseline: each
  scenario's duration on an otherwise idle node);
* ``before`` (with ``--before-ref REF``): as ``parallel``, the node run from the source of
  ``REF`` (extracted with ``git archive``), to compare a change in the same run.

Each mode stores the same suite of 20 scenarios through ``POST /test-suites`` (varied: asking
the opening hours or for an appointment and expecting the facts' sentence heard, pressing keys
and expecting the keypad turn answered, a barge-in over the greeting, a silence first, one
longer call of four turns), first runs a one-scenario suite to warm the node's models, then
runs the suite through ``POST /test-suites/{id}/runs`` and polls ``GET /test-runs/{id}`` to its
end. Each scenario is a real test call through the lab PBX (a Local channel pair in
``voicedock-test``), judged on what the caller leg heard (Whisper).

Reported per mode: the suite's wall time (the ``POST`` to the run's end seen by the bench, and
the run's own ``started_at`` → ``ended_at``), each scenario's ``duration_ms`` (its test call
from the answer to the caller's hang-up, as the run stores it), the longest, the ratio wall /
longest, pass / fail counts and the failures' reasons, where the assistant's answers' time
went (each test call's stored per-turn ``latency``: the endpointing decision → the final
transcript, the model's first token, the first audio, the first frame sent), the node's CPU
over the run and its log's warnings, the load average before and after.

Usage: ``.venv/bin/python bench/test_suite_parallel.py [--modes parallel,serial]
[--concurrency 20] [--before-ref REF] [--out FILE]``; writes
``bench/results/test_suite_parallel-<date>.md``.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from greeting_latency import (  # bench/, beside this script
    ASSISTANT,
    CLI,
    LabAri,
    issue_key,
    lab_asterisk,
    node_config,
    node_env,
    parse_time,
    read_log,
    under_test,
    until,
)
from originate import machine, pct
from two_nodes import cpu_seconds
from voice_previews import tree_of

from deploy.test_compose_as_shipped import get_json, wait_healthy
from pg_server import free_port
from process_helpers import logged_process
from voicedock.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "voicedock.example.toml"
HOURS_HEARD = r"(?i)monday to friday"  # the opening hours' fact, as the caller leg hears it
APPOINTMENT_HEARD = r"(?i)appointment request|colleague will confirm"
KEYPAD_HEARD = r"(?i)understood"  # the rule-based model's answer to a turn it has no fact for
MODES = {"parallel": 0, "serial": 1, "before": 0}  # 0: --concurrency
STAGES = ("stt_final_ms", "llm_first_token_ms", "tts_first_audio_ms", "first_frame_sent_ms")


def _says(name: str, text: str, heard: str, **step: Any) -> dict[str, Any]:
    return {
        "name": name,
        "steps": [{"type": "say", "text": text, **step}],
        "expectations": [{"type": "said", "regex": heard}],
    }


def _presses(keys: str) -> dict[str, Any]:
    return {
        "name": f"presses {keys}",
        "steps": [{"type": "press", "keys": keys}],
        "expectations": [{"type": "said", "regex": KEYPAD_HEARD}],
    }


SCENARIOS: list[dict[str, Any]] = [
    *(
        _says(f"asks the opening hours ({i + 1})", text, HOURS_HEARD)
        for i, text in enumerate(
            (
                "What are your opening hours?",
                "Hello, could you tell me your opening hours, please?",
                "Hi, what are the opening hours of the office?",
                "I would like to know your opening hours.",
                "What are the opening hours this week?",
                "Can you tell me the opening hours?",
                "Good morning, what are your opening hours?",
            )
        )
    ),
    *(
        _says(f"asks for an appointment ({i + 1})", text, APPOINTMENT_HEARD)
        for i, text in enumerate(
            (
                "I would like to book an appointment on Monday.",
                "Can I make an appointment for next week?",
                "I need an appointment, please.",
                "Hello, I am calling about an appointment.",
                "Could I get an appointment on Friday afternoon?",
            )
        )
    ),
    *(_presses(keys) for keys in ("1234#", "42#", "7#", "9876#")),
    _says("asks something it has no fact for", "Do you sell blue umbrellas?", KEYPAD_HEARD),
    _says(
        "barges in over the greeting",
        "What are your opening hours?",
        HOURS_HEARD,
        when="over-assistant",
    ),
    {
        "name": "stays silent, then asks the opening hours",
        "steps": [
            {"type": "silence", "seconds": 4},
            {"type": "say", "text": "What are your opening hours?"},
        ],
        "expectations": [{"type": "said", "regex": HOURS_HEARD}],
    },
    {
        "name": "a longer call: hours, appointment, keys, goodbye",
        "steps": [
            {"type": "say", "text": "What are your opening hours?"},
            {"type": "say", "text": "I would like to book an appointment on Monday."},
            {"type": "press", "keys": "55#"},
            {"type": "say", "text": "Thank you, that is all."},
        ],
        "expectations": [
            {"type": "said", "regex": HOURS_HEARD},
            {"type": "said", "regex": APPOINTMENT_HEARD},
            {"type": "said", "regex": KEYPAD_HEARD},
        ],
        "max_duration_seconds": 120,
    },
]
assert len(SCENARIOS) == 20


@dataclass
class Mode:
    name: str
    max_concurrent: int
    source: Path  # the node's source tree (its src/ and lab/src/)
    wall_s: float = 0.0  # POST .../runs → the run seen ended (the bench's clock)
    run_s: float = 0.0  # the run's started_at → ended_at (the node's clock)
    status: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    warm_s: float = 0.0
    node_cpu_s: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    stages: dict[str, list[float]] = field(default_factory=dict)  # ms, every answered turn
    tracebacks: int = 0
    log_lines: Counter[str] = field(default_factory=Counter)
    error: str = ""

    @property
    def durations_s(self) -> list[float]:
        return [r["duration_ms"] / 1000 for r in self.results if r.get("duration_ms")]


@dataclass
class Node:
    http: aiohttp.ClientSession
    base: str
    key: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def send(self, method: str, path: str, body: object, expect: int) -> Any:
        url = f"{self.base}{path}"
        async with self.http.request(method, url, json=body, headers=self.headers()) as resp:
            assert resp.status == expect, f"{method} {path}: {resp.status} {await resp.text()}"
            return await resp.json()

    async def run_suite(self, suite_id: str, within: float) -> tuple[dict[str, Any], float]:
        """The suite run to its end: the run, and the seconds from the POST to its end."""
        began = time.monotonic()
        accepted = await self.send("POST", f"/test-suites/{suite_id}/runs", {}, 202)
        async with asyncio.timeout(within):
            while True:
                run: dict[str, Any] = await get_json(
                    self.http, f"{self.base}/test-runs/{accepted['id']}", self.key
                )
                if run["status"] not in ("queued", "running"):
                    return run, time.monotonic() - began
                await asyncio.sleep(0.25)


async def prepared(node: Node) -> str:
    """The example assistant, its facts given to the rule-based model (``PATCH``): its id."""
    example = load_settings(EXAMPLE, environ={}).assistants[0]
    found = await get_json(node.http, f"{node.base}/assistants", node.key)
    assistant_id = str(next(a["id"] for a in found["assistants"] if a["name"] == ASSISTANT))
    llm = {"provider": "rule_based", "facts": dict(example.facts)}
    await node.send("PATCH", f"/assistants/{assistant_id}", {"llm_config": llm}, 200)
    return assistant_id


async def suite(node: Node, assistant_id: str, name: str, scenarios: list[dict[str, Any]]) -> str:
    body = {"name": name, "assistant_id": assistant_id, "scenarios": scenarios}
    return str((await node.send("POST", "/test-suites", body, 201))["id"])


async def run_mode(lab: Any, workdir: Path, mode: Mode) -> Mode:
    port = free_port()
    config = node_config(workdir / f"{mode.name}.toml", 40)
    env = node_env(lab, port, workdir / f"{mode.name}.db", "after")
    env["VOICEDOCK_REHEARSAL__MAX_CONCURRENT"] = str(mode.max_concurrent)
    env["PYTHONPATH"] = os.pathsep.join(str(mode.source / d) for d in ("src", "lab/src"))
    log = workdir / f"{mode.name}.log"
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-c", CLI, "serve", "--config", str(config)]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            with logged_process(args, log, env=env) as process:
                await _suite_on(lab, http, base, process, log, config, env, mode)
    finally:
        mode.tracebacks, mode.log_lines = read_log(log, f"test_suite_parallel-{mode.name}.log")
    return mode


async def _suite_on(
    lab: Any,
    http: aiohttp.ClientSession,
    base: str,
    process: Any,
    log: Path,
    config: Path,
    env: dict[str, str],
    mode: Mode,
) -> None:
    """The warm-up and the measured run on the node ``process`` serves at ``base``."""
    await wait_healthy(http, base, process, log)
    ari = LabAri(http, lab)
    assert await until(lambda: ari.app_registered(lab.settings.app_name), 30)
    node = Node(http, base, await asyncio.to_thread(issue_key, config, env))
    assistant_id = await prepared(node)
    warm = await suite(node, assistant_id, "Warm-up", SCENARIOS[:1])
    _, mode.warm_s = await node.run_suite(warm, within=180)
    suite_id = await suite(node, assistant_id, "Front desk, 20 scenarios", SCENARIOS)
    await asyncio.sleep(2)
    mode.load_before = os.getloadavg()
    cpu0 = cpu_seconds(process.pid)
    run, mode.wall_s = await node.run_suite(suite_id, within=1800)
    mode.node_cpu_s = cpu_seconds(process.pid) - cpu0
    mode.load_after = os.getloadavg()
    for result in run["results"]:
        await _stages(node, result.get("call_id"), mode)
    mode.status, mode.results = run["status"], run["results"]
    if run.get("started_at") and run.get("ended_at"):
        mode.run_s = parse_time(run["ended_at"]) - parse_time(run["started_at"])


async def _stages(node: Node, call_id: str | None, mode: Mode) -> None:
    """The test call's answered turns: where their time went (its stored ``latency``)."""
    if call_id is None:
        return
    async with node.http.get(f"{node.base}/calls/{call_id}", headers=node.headers()) as resp:
        if resp.status != 200:
            return
        call = await resp.json()
    for turn in call.get("latency") or []:
        for stage in STAGES:
            if turn.get(stage) is not None:
                mode.stages.setdefault(stage, []).append(float(turn[stage]))


async def bench(lab: Any, workdir: Path, modes: list[Mode]) -> list[Mode]:
    await asyncio.to_thread(lab.cli, "core set verbose 0")
    for mode in modes:
        print(f"{mode.name}: max_concurrent = {mode.max_concurrent} ...", flush=True)
        try:
            await run_mode(lab, workdir, mode)
        except Exception as exc:  # the mode failed: the next one still runs
            mode.error = f"{type(exc).__name__}: {exc}"[:300]
            print(f"{mode.name} failed: {mode.error}", flush=True)
    return modes


# -- the report ------------------------------------------------------------------------------


def _spread(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{pct(values, 0.5):.0f} / {pct(values, 0.95):.0f} / {max(values):.0f}"


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in values)


def report(modes: list[Mode], command: str, started: str) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# A test suite of {len(SCENARIOS)} scenarios, in parallel and one by one, {now}",
        "",
        f"Machine: {machine()}, `nproc` = {os.cpu_count()} (shared: other work ran meanwhile)",
        f"Started {started}; voicedock under test: {under_test()}",
        "",
        f"Command: `{command}`",
        "",
        "A private lab Asterisk 22 on 127.0.0.1; per mode a fresh `voicedock serve` from "
        "`voicedock.example.toml` (SQLite, offline speech: Piper, Whisper base, the rule-based "
        f'model with the example\'s facts), the assistant "{ASSISTANT}". One suite of '
        f"{len(SCENARIOS)} scenarios run through REST after a one-scenario warm-up run. Wall: "
        "`POST /test-suites/{id}/runs` → the run seen ended by the bench (polling every "
        "0.25 s); run: its `started_at` → `ended_at`. A scenario's duration is its stored "
        "`duration_ms` (its test call, answer → the caller's hang-up).",
        "",
        "| mode | `max_concurrent` | status | passed / failed / error | **wall (s)** | run (s) "
        "| longest scenario (s) | sum of scenarios (s) | **wall / longest** | node CPU (s) "
        "| load before | load after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in modes:
        if mode.error:
            lines.append(f"| {mode.name} | {mode.max_concurrent} | failed: {mode.error} |||||||||")
            continue
        outcomes = [r["outcome"] for r in mode.results]
        durations = mode.durations_s
        longest = max(durations, default=0.0)
        ratio = mode.wall_s / longest if longest else float("nan")
        lines.append(
            f"| {mode.name} | {mode.max_concurrent} | {mode.status} "
            f"| {outcomes.count('passed')} / {outcomes.count('failed')} / "
            f"{outcomes.count('error')} | **{mode.wall_s:.1f}** | {mode.run_s:.1f} "
            f"| {longest:.1f} | {sum(durations):.1f} | **{ratio:.2f}** | {mode.node_cpu_s:.1f} "
            f"| {_load(mode.load_before)} | {_load(mode.load_after)} |"
        )
    done = [m for m in modes if not m.error]
    serial = next((m for m in done if m.max_concurrent == 1), None)
    parallel = next((m for m in done if m.max_concurrent > 1), None)
    if serial is not None and parallel is not None and serial.durations_s:
        longest = max(serial.durations_s)
        lines += [
            "",
            f"Against the baseline: the parallel suite's wall {parallel.wall_s:.1f} s is "
            f"**{parallel.wall_s / longest:.2f}×** the longest scenario run alone "
            f"({longest:.1f} s) and {parallel.wall_s / serial.wall_s:.2f}× the serial "
            f"suite's wall ({serial.wall_s:.1f} s).",
        ]
    lines += [
        "",
        "Per scenario: outcome and duration (s) per mode; the voice-to-voice p95 at the caller "
        "leg (ms) in brackets.",
        "",
        "| scenario | " + " | ".join(m.name for m in done) + " |",
        "|---|" + "---|" * len(done),
    ]
    by_mode = [{r["name"]: r for r in m.results} for m in done]
    for scenario in SCENARIOS:
        cells = []
        for results in by_mode:
            r = results.get(scenario["name"])
            if r is None:
                cells.append("—")
                continue
            seconds = (r.get("duration_ms") or 0) / 1000
            p95 = f" [{r['latency_p95_ms']}]" if r.get("latency_p95_ms") is not None else ""
            cells.append(f"{r['outcome']} {seconds:.1f}{p95}")
        lines.append(f"| {scenario['name']} | " + " | ".join(cells) + " |")
    failures = [
        (m.name, r) for m in done for r in m.results if r["outcome"] != "passed"
    ]  # fmt: skip
    if failures:
        lines += ["", "Not passed, and why:", ""]
        for name, r in failures:
            heard = " / ".join(t["text"] for t in r.get("heard", []) if t["role"] == "assistant")
            lines.append(f"- {name}, {r['name']}: {r.get('reason')} (heard: {heard[:300]})")
    lines += [
        "",
        "Where the assistant's answers' time went: every answered turn of the test calls (their "
        "stored `latency`), ms from the endpointing decision, p50 / p95 / max:",
        "",
        "| mode | turns | " + " | ".join(STAGES) + " |",
        "|---|---|" + "---|" * len(STAGES),
    ]
    for mode in done:
        turns = len(mode.stages.get(STAGES[-1], []))
        cells = [_spread(mode.stages.get(stage, [])) for stage in STAGES]
        lines.append(f"| {mode.name} | {turns} | " + " | ".join(cells) + " |")
    lines += ["", "The node's log:", ""]
    for mode in done:
        lines.append(f"- {mode.name}: tracebacks {mode.tracebacks}")
        for kind, count in mode.log_lines.most_common(8):
            lines.append(f"  - {count} × `{kind}`")
    lines += [
        "",
        "Warm-up runs (one scenario, the models loaded): "
        + ", ".join(f"{m.name} {m.warm_s:.1f} s" for m in done),
        f"Load average at the end: {_load(os.getloadavg())}",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modes", default="parallel,serial")
    parser.add_argument("--concurrency", type=int, default=len(SCENARIOS))
    parser.add_argument("--before-ref", default="", help="the source of the `before` mode")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    names = args.modes.split(",")
    assert args.before_ref or "before" not in names, "the before mode needs --before-ref"
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with lab_asterisk(400) as lab, tempfile.TemporaryDirectory() as workdir:
        modes = [
            Mode(
                name, MODES[name] or args.concurrency, tree_of(name, args.before_ref, Path(workdir))
            )
            for name in names
        ]
        done = asyncio.run(bench(lab, Path(workdir), modes))
    before = f" --before-ref {args.before_ref}" if args.before_ref else ""
    command = (
        f".venv/bin/python bench/test_suite_parallel.py --modes {args.modes} "
        f"--concurrency {args.concurrency}{before}"
    )
    text = report(done, command, started)
    if args.before_ref:
        text = text.replace(
            "Command:",
            f"`before`: the node from `{args.before_ref}`'s source (git archive).\n\nCommand:",
            1,
        )
    print(text)
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    out = args.out or Path(__file__).parent / "results" / f"test_suite_parallel-{day}.md"
    out.write_text(text)


if __name__ == "__main__":
    main()
