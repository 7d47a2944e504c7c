"""The soak: ``--calls`` calls at once for ``--minutes`` minutes; nothing lost, nothing stuck.

A private PostgreSQL (``tests/pg_server``; ``--database sqlite``: an SQLite file, one node), a
private lab Asterisk and ``--nodes`` voicedock
processes (``tests/nodes/node_process``: fake speech — an STT hearing the party's sentence in
every utterance, the echo LLM, a tone TTS — so a call costs everything but a speech model), run by
the harness ``tests/soak/harness.py`` (the test suite's short soak runs the same code): calls of
``--min-call``-``--max-call`` seconds ending and new ones starting, outbound through REST to lab
parties that talk (``say``, ``inject-context``, ``end-call`` and blind transfers to the lab's
``sales`` agent through ``POST /calls/{id}/control``; a party that hangs up by itself), inbound
calls from the lab's carrier, a signed-webhook receiver counting every delivery.

With ``--kill-node-at MIN`` (two nodes or more) node a is killed (SIGKILL) at that minute: its
calls must end ``node-lost``, settled by a survivor within 30 s (docs/nodes.md), and the run goes
on on the others.

Checks at the end (each a count that must be 0): calls stuck connecting / in progress, calls
ended otherwise than asked, channels or bridges left at the PBX, calls without (or with two)
end-of-call reports, unexpected command answers, error-level log lines and tracebacks. RSS and
open file descriptors of each node (and Asterisk) sampled from /proc every few seconds, plotted
over time (``bench/results/soak-<date>[-kill].png``, matplotlib) and judged flat after warm-up.

Usage: ``.venv/bin/python bench/soak.py [--calls 100] [--minutes 30] [--nodes 1]
[--kill-node-at MIN] [--database postgresql|sqlite] [--out FILE]``; writes
``bench/results/soak-<date>.md`` (appends a section when the file exists).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import memory_growth  # bench/, beside this script
from greeting_latency import lab_asterisk, under_test
from originate import machine

from pg_server import fresh_database, start_postgres
from soak.harness import Plan, Result, Sample, Soak

RESULTS = Path(__file__).parent / "results"


# -- flatness ----------------------------------------------------------------------------------


def steady(samples: list[Sample], process: str, result: Result) -> list[Sample]:
    """The process's samples after warm-up (the first fifth of the window, at least the first
    calls' length) until the window's end."""
    warm = max(result.window_s / 5, result.plan.max_call_s)
    end = result.window_s
    return [s for s in samples if s.process == process and warm <= s.at <= end]


def growth(values: list[float]) -> tuple[float, float]:
    """(last tenth's mean − first tenth's mean, the least-squares slope per minute)."""
    if len(values) < 10:
        return 0.0, 0.0
    tenth = max(1, len(values) // 10)
    delta = statistics.fmean(values[-tenth:]) - statistics.fmean(values[:tenth])
    xs = list(range(len(values)))
    slope = statistics.linear_regression(xs, values).slope
    return delta, slope


def beyond_calls(samples: list[Sample]) -> list[float]:
    """Each sample's open files minus those the calls in progress explain: a call holds its
    sockets and the PBX its channels' while it is up, so the count follows how many calls are up
    at the moment sampled. The least-squares line of fds on calls up over ``samples`` takes that
    out; what is left grows only if something outlives its call."""
    fds = [float(s.fds) for s in samples]
    up = [float(s.calls_up) for s in samples]
    if len(set(up)) < 2:
        return fds
    fit = statistics.linear_regression(up, fds)
    return [f - fit.slope * u for f, u in zip(fds, up, strict=True)]


def flat_rows(result: Result) -> list[str]:
    rows = []
    processes = sorted({s.process for s in result.samples})
    for process in processes:
        own = steady(result.samples, process, result)
        every = [s for s in result.samples if s.process == process]
        if not own or not every:
            continue
        per_min = 60 / result.plan.sample_every
        rss_delta, rss_slope = growth([s.rss_mb for s in own])
        fd_delta, _ = growth([float(s.fds) for s in own])
        fd_beyond, fd_slope = growth(beyond_calls(own))
        half = [s for s in own if s.at >= result.window_s / 2]
        rss_half, _ = growth([s.rss_mb for s in half])
        fd_half, _ = growth(beyond_calls(half))
        rss_flat = rss_delta < max(10.0, 0.05 * own[0].rss_mb)
        fd_flat = fd_beyond < max(10.0, 0.05 * own[0].fds)
        rows.append(
            f"| {process} | {every[0].rss_mb:.0f} / {max(s.rss_mb for s in every):.0f} / "
            f"{every[-1].rss_mb:.0f} | {rss_delta:+.1f} MB ({rss_slope * per_min:+.2f} MB/min) "
            f"| {'flat' if rss_flat else '**growing**'} "
            f"| {every[0].fds} / {max(s.fds for s in every)} / {every[-1].fds} "
            f"| {fd_delta:+.1f} | {fd_beyond:+.1f} ({fd_slope * per_min:+.2f}/min) "
            f"| {'flat' if fd_flat else '**growing**'} "
            f"| {rss_half:+.1f} MB / {fd_half:+.1f} |"
        )
    return rows


def plot(result: Result, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rss, fds, up) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for process in sorted({s.process for s in result.samples}):
        own = [s for s in result.samples if s.process == process]
        minutes = [s.at / 60 for s in own]
        rss.plot(minutes, [s.rss_mb for s in own], label=process)
        fds.plot(minutes, [s.fds for s in own], label=process)
    # The calls up, from the process sampled longest (a killed node's samples stop).
    every = Counter(s.process for s in result.samples)
    longest = [s for s in result.samples if s.process == every.most_common(1)[0][0]]
    up.plot([s.at / 60 for s in longest], [s.calls_up for s in longest], color="gray")
    for axis in (rss, fds, up):
        axis.axvline(result.window_s / 60, color="black", linestyle=":", linewidth=1)
        if result.killed_at_s is not None:
            axis.axvline(result.killed_at_s / 60, color="red", linestyle="--", linewidth=1)
        axis.grid(alpha=0.3)
    rss.set_ylabel("RSS (MB)")
    fds.set_ylabel("open file descriptors")
    up.set_ylabel("calls in progress")
    up.set_xlabel("minutes (dotted: last call started; dashed red: node killed)")
    rss.legend(loc="upper left")
    fds.legend(loc="upper left")
    rss.set_title(title)
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)


# -- the report --------------------------------------------------------------------------------


def report(
    result: Result, command: str, png: Path, load_before: str, code: str, database: str
) -> str:
    plan = result.plan
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    losses = result.losses()
    lost = sum(losses.values())
    kill = (
        f", node a killed (SIGKILL) at minute {plan.kill_node_at_min:g}"
        if plan.kill_node_at_min is not None
        else ""
    )
    lines = [
        f"## {plan.calls_at_once} calls at once for {plan.minutes:g} min, {plan.nodes} "
        f"node(s){kill} — {now}",
        "",
        f"Machine: {machine()}, `nproc` = {os.cpu_count()} — a shared 2-core VM (other work "
        f"may run); load average before: {load_before}, after: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"voicedock under test: {code}",
        "",
        f"Command: `{command}`",
        "",
        f"Calls of {plan.min_call_s:g}-{plan.max_call_s:g} s; speech: the tests' local fakes "
        "(an STT hearing the party's sentence in every utterance, the echo LLM, a 440 Hz tone "
        f"TTS), {database} and the lab Asterisk on 127.0.0.1. "
        f"{result.total_calls} calls in all "
        f"({sum(1 for c in result.calls.values())} placed outbound, "
        f"{result.inbound_started} inbound started), at most {result.most_up} in progress at "
        f"one look; last call started at {result.window_s / 60:.1f} min, all judged at "
        f"{result.finished_s / 60:.1f} min.",
        "",
        f"**Zero-loss checks: {'all 0' if lost == 0 else f'{lost} FAILED'}**",
        "",
        "| check | count |",
        "|---|---|",
        *(f"| {what} | {'**' + str(n) + '**' if n else n} |" for what, n in losses.items()),
        f"| webhook redeliveries of one id (at-least-once) | {result.redeliveries} |",
        "",
        "How the calls ended (kind: status end_reason):",
        "",
        *(f"- {kind}: {n}" for kind, n in sorted(result.end_reasons.items())),
        "",
        "Commands (type status): "
        + ", ".join(f"{k}: {n}" for k, n in sorted(result.commands.items())),
        "",
        "Webhooks delivered, by event: "
        + ", ".join(f"{k}: {n}" for k, n in sorted(result.webhooks.items())),
        "",
    ]
    if result.refused:
        lines += [f"Placements refused: {dict(result.refused.most_common(5))}", ""]
    if result.killed_at_s is not None:
        lost_node = sum(1 for c in result.listed.values() if c.get("end_reason") == "node-lost")
        lines += [
            f"Node {result.killed_node} killed at {result.killed_at_s / 60:.2f} min: "
            f"{lost_node} calls ended node-lost, "
            f"{len(result.settled_late)} of them more than 30 s after the kill.",
            "",
        ]
    warm_min = max(result.window_s / 5, plan.max_call_s) / 60
    lines += [
        f"RSS and open file descriptors (first / max / last; growth after warm-up: the last "
        f"tenth's mean minus the first tenth's, from {warm_min:.1f} "
        f"min to the last call's start; flat when under 10 MB / 10 fds or 5 %; open files "
        f"judged beyond those the calls in progress explain, fitted by least squares on the "
        f"calls up when sampled): "
        f"![RSS and fds]({png.name}) (samples: `{png.with_suffix('.csv').name}`)",
        "",
        "| process | RSS MB first / max / last | RSS growth | | fds first / max / last "
        "| fd growth | beyond calls up | | second half of the run: RSS / fd growth beyond calls |",
        "|---|---|---|---|---|---|---|---|---|",
        *flat_rows(result),
        "",
        "Open files of each node before the first call and once every call was over (the "
        "bench's own connections to it closed), by kind:",
        "",
        *(
            f"- {node}: {result.fds_before[node][0]} {dict(result.fds_before[node][1])} → "
            f"{count} {dict(kinds)}"
            for node, (count, kinds) in sorted(result.fds_after.items())
        ),
        "",
        "Warning and error lines in the nodes' logs, by kind:",
        "",
    ]
    for node, kinds in sorted(result.log_lines.items()):
        if not kinds:
            lines.append(f"- {node}: none")
        for kind, n in kinds.most_common(8):
            lines.append(f"- {node}: {n} × `{kind}`")
    if result.unexpected_ends:
        lines += ["", "Unexpected ends (first 5):", ""]
        lines += [f"- {k}: {v}" for k, v in list(result.unexpected_ends.items())[:5]]
    if result.commands_failed:
        lines += ["", f"Unexpected command answers: {dict(result.commands_failed.most_common(5))}"]
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100, help="calls at once")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--min-call", type=float, default=30.0, help="seconds")
    parser.add_argument("--max-call", type=float, default=120.0, help="seconds")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--kill-node-at", type=float, default=None, metavar="MIN")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="the nodes' database (sqlite: the embedded one, one node only)",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        default=None,
        metavar="DIR",
        help="the node writes a census of its memory a minute in DIR (RSS, pymalloc's and "
        "malloc's used and free memory, objects by type, voicedock's containers) and, unless "
        "VOICEDOCK_TRACEMALLOC_FRAMES=0, traces its allocations (a snapshot a minute); the growth "
        "after warm-up is printed (bench/memory_growth.py)",
    )
    args = parser.parse_args()
    if args.tracemalloc is not None:  # the nodes' processes inherit it (node_process)
        args.tracemalloc.mkdir(parents=True, exist_ok=True)
        os.environ["VOICEDOCK_TRACEMALLOC"] = str(args.tracemalloc)
    nodes = max(args.nodes, 2) if args.kill_node_at is not None else args.nodes
    if args.database == "sqlite" and nodes != 1:
        parser.error("an SQLite database serves one node: --nodes 1, no --kill-node-at")
    plan = Plan(
        calls_at_once=args.calls,
        minutes=args.minutes,
        min_call_s=args.min_call,
        max_call_s=args.max_call,
        nodes=nodes,
        kill_node_at_min=args.kill_node_at,
        seed=args.seed,
    )
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    code = under_test()  # as the nodes start
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    out = args.out or RESULTS / f"soak-{day}.md"
    suffix = "-kill" if args.kill_node_at is not None else ""
    png = out.with_name(f"{out.stem}{suffix}-{args.calls}x{args.minutes:g}min.png")
    server, stop = start_postgres() if args.database == "postgresql" else (None, lambda: None)
    try:
        # Two RTP streams a call at the lab, two ports each, plus transfers' agents.
        with lab_asterisk(8 * args.calls + 400) as lab, tempfile.TemporaryDirectory() as work:
            asyncio.run(lab_quiet(lab))
            if server is None:
                url = f"sqlite:///{Path(work) / 'voicedock.db'}"
            else:
                url = asyncio.run(fresh_database(server))
            soak = Soak(plan, lab, url, Path(work))
            try:
                result = asyncio.run(soak.run())
            finally:
                for log in Path(work).glob("*.log"):  # kept for a look at what went wrong
                    shutil.copy(log, Path(tempfile.gettempdir()) / f"soak-{log.name}")
    finally:
        stop()
    command = (
        f".venv/bin/python bench/soak.py --calls {args.calls} --minutes {args.minutes:g} "
        f"--min-call {args.min_call:g} --max-call {args.max_call:g} --nodes {nodes}"
        + (f" --kill-node-at {args.kill_node_at:g}" if args.kill_node_at is not None else "")
        + (" --database sqlite" if server is None else "")
    )
    plot(result, png, f"soak: {args.calls} calls at once, {nodes} node(s){suffix}")
    with png.with_suffix(".csv").open("w") as samples:  # the plot's data
        samples.write("seconds,process,rss_mb,fds,calls_up\n")
        for x in result.samples:
            samples.write(f"{x.at:.1f},{x.process},{x.rss_mb:.1f},{x.fds},{x.calls_up}\n")
    database = "PostgreSQL" if server is not None else "SQLite"
    text = report(result, command, png, load_before, code, database)
    print(text)
    if args.tracemalloc is not None:
        warm = max(result.window_s / 5, plan.max_call_s)
        print(memory_growth.census(args.tracemalloc, warm, top=25))
        print(memory_growth.growth(args.tracemalloc, warm, top=25))
    if not out.exists():
        out.write_text(f"# Soak, {day}\n\n")
    with out.open("a") as file:
        file.write(text + "\n")


async def lab_quiet(lab: object) -> None:
    """The parties' dialplan would log every step of hundreds of calls: not the bench's cost."""
    from voicedock_lab.server import LabAsterisk

    assert isinstance(lab, LabAsterisk)
    await asyncio.to_thread(lab.cli, "core set verbose 0")


if __name__ == "__main__":
    main()
