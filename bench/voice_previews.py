"""A live call's sentence latency while another organization floods voice previews.

The real app (``serving``: the web app and ``Service`` of the tests, SQLite, no PBX) in its own
process, once per mode, all in one run on the same machine:

* ``before``: the source tree of ``--before-ref`` (previews at the calls' priority, never
  refused, filling the calls' cache), extracted with ``git archive``;
* ``after``: this tree, the defaults (``[limits] previews_per_organization = 2``,
  ``previews_per_node = 8``): most of the flood is refused 429 and retried;
* ``after-unbounded``: this tree with both bounds raised to ``--previews``, so all of the flood
  is under way: what the priority alone does.

In each: Piper (the node's offline voice) warmed up; organization globex's greeting synthesized
as while its call rings (``prepare``) and spoken, then ``--sentences`` sentences of a globex
call spoken one after the other through the runner's own ``NodeSynthesis`` (``speech_for``,
what an answered call's TTS is), each timed from the call asking to its audio ready: **alone**.
Then acme starts ``--previews`` clients (in a process of their own, as remote clients), each
sending ``POST /voices/piper:…/preview`` over HTTP with a new 70-character text as soon as its
last one is answered (0.5 s after a 429), and once the flood has run 2 s the same number of new
globex sentences are timed: **flooded**. Reported: sentence latency p50/p95/max alone and
flooded, the previews answered 200 and refused 429 during the flood, and whether globex's
greeting is still in the cache after it (``--cache-mb``: the calls' cache, smaller than the
default 64 MB so that a short run can fill it; the flood's previews are 22 kHz audio).

Usage: ``.venv/bin/python bench/voice_previews.py [--previews 40] [--sentences 10]
[--before-ref 1cce922] [--cache-mb 8] [--write]``; with ``--write``, the result goes to
``bench/results/voice_previews-<date>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(Path(__file__).resolve())
MODES = ("before", "after", "after-unbounded")
PIPER_ID = "piper:en_US-joe-medium"
GREETING = "Thank you for calling Globex, how can I help you today?"
FLOOD_WARMUP_S = 2.0
RETRY_S = 0.5  # a refused flood client tries again this soon (not after Retry-After)


def preview_text(client: int, nth: int) -> str:
    return f"Preview {client} number {nth}: this is how the voice sounds on the phone."


def sentence(nth: int) -> str:
    return f"Your table number {nth} is ready, please come to the front desk."


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ── the node's side: runs in a subprocess, on the tree of its mode ──────────────────────
async def node(mode: str, previews: int, sentences: int, cache_mb: int) -> dict[str, Any]:
    from api.conftest import serving
    from fakes.world import GLOBEX, make_settings, org_id
    from voicedock.calls.live.providers import build_tts
    from voicedock.domain.assistant_config import config_of

    globex = org_id(GLOBEX)
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(f"sqlite:///{tmp}/bench.db")
        settings.speech.synthesis_cache_mb = cache_mb
        if mode == "after-unbounded":
            settings.limits.previews_per_organization = previews
            settings.limits.previews_per_node = previews
        async with serving(settings) as api:
            synthesis = api.service.runner.speech.synthesis
            assert synthesis is not None
            egress = api.service.webhooks.egress
            piper = config_of({"tts_config": {"provider": "piper"}})
            tts = build_tts(piper, settings.speech, egress)
            call = synthesis.speech_for(tts, globex)

            async def timed(text: str) -> float:
                start = time.perf_counter()
                async for _ in call.synthesize(text):
                    pass
                return time.perf_counter() - start

            await timed("Warming the voice up.")
            held = synthesis.prepare(tts, globex, GREETING)  # while the call rings
            await timed(GREETING)  # answered: the greeting spoken, cached
            held.release()
            alone = []
            for n in range(sentences):
                alone.append(await timed(sentence(n)))
                await asyncio.sleep(0.1)

            # acme's clients, in a process of their own as remote clients are.
            flood = await asyncio.create_subprocess_exec(
                sys.executable,
                SCRIPT,
                "--flood",
                str(api.client.make_url("")),
                api.acme_key,
                str(previews),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert flood.stdin is not None
            assert flood.stdout is not None
            await asyncio.sleep(FLOOD_WARMUP_S)
            flooded = []
            for n in range(sentences):
                flooded.append(await timed(sentence(1000 + n)))
                await asyncio.sleep(0.1)
            flood.stdin.close()  # the clients stop after the request each has under way
            statuses = json.loads(await flood.stdout.read())
            await flood.wait()
            return {
                "alone": alone,
                "flooded": flooded,
                "statuses": statuses,
                "greeting_cached": synthesis.ready(tts, globex, GREETING),
                "workers": synthesis.pool.workers,
            }


# ── the flood: acme's clients, in their own process ─────────────────────────────────────
async def flood(url: str, key: str, clients: int) -> dict[str, int]:
    """``clients`` clients sending previews until stdin closes; the statuses answered."""
    import aiohttp

    statuses: Counter[str] = Counter()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def client(session: aiohttp.ClientSession, n: int) -> None:
        nth = 0
        while not stop.is_set():
            async with session.post(
                f"{url.rstrip('/')}/voices/{PIPER_ID}/preview",
                json={"text": preview_text(n, nth)},
                headers={"Authorization": f"Bearer {key}"},
            ) as resp:
                await resp.read()
                statuses[str(resp.status)] += 1
            nth += 1
            if resp.status == 429:
                await asyncio.sleep(RETRY_S)

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session, asyncio.TaskGroup() as group:
        for n in range(clients):
            group.create_task(client(session, n))
        await loop.run_in_executor(None, sys.stdin.read)  # until the node closes it
        stop.set()
    return dict(sorted(statuses.items()))


# ── the bench: one subprocess per mode ──────────────────────────────────────────────────
def tree_of(mode: str, before_ref: str, scratch: Path) -> Path:
    if not mode.startswith("before"):
        return ROOT
    tree = scratch / "before"
    if not tree.exists():
        tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", before_ref, "src", "tests", "lab"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def run_mode(mode: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    tree = tree_of(mode, args.before_ref, scratch)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(tree / d) for d in ("src", "tests", "lab/src"))
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--node",
        mode,
        "--previews",
        str(args.previews),
        "--sentences",
        str(args.sentences),
        "--cache-mb",
        str(args.cache_mb),
    ]
    done = subprocess.run(
        command, env=env, cwd=tree, capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def ms(values: list[float]) -> str:
    return " / ".join(f"{1000 * pct(values, q):.0f}" for q in (0.5, 0.95, 1.0))


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> str:
    sys.path.insert(0, str(ROOT / "bench"))
    from originate import machine

    now = dt.datetime.now(dt.UTC)
    load = os.getloadavg()
    argv = " ".join(sys.argv[1:])
    lines = [
        f"# Voice previews beside a live call — {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}; load average at the end {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f}",
        f"Command: `.venv/bin/python bench/voice_previews.py {argv}`",
        f"Before: `{args.before_ref}`. {args.previews} preview clients of acme against "
        f"{args.sentences} sentences of a globex call (Piper at 8 kHz, through the runner's "
        f"NodeSynthesis), calls' cache {args.cache_mb} MB.",
        "",
        "| mode | pool workers | sentence alone p50 / p95 / max (ms) | flooded p50 / p95 / max "
        "(ms) | previews 200 | previews 429 | greeting still cached |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, r in results.items():
        statuses = r["statuses"]
        lines.append(
            f"| {mode} | {r['workers']} | {ms(r['alone'])} | {ms(r['flooded'])} | "
            f"{statuses.get('200', 0)} | {statuses.get('429', 0)} | "
            f"{'yes' if r['greeting_cached'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--previews", type=int, default=40)
    parser.add_argument("--sentences", type=int, default=10)
    parser.add_argument("--before-ref", default="1cce922")
    parser.add_argument("--cache-mb", type=int, default=8)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--node", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--flood", nargs=3, metavar=("URL", "KEY", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood:
        url, key, clients = args.flood
        print(json.dumps(asyncio.run(flood(url, key, int(clients)))))
        return
    if args.node:
        result = asyncio.run(node(args.node, args.previews, args.sentences, args.cache_mb))
        print(json.dumps(result))
        return
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for mode in args.modes.split(","):
            print(f"{mode} ...", file=sys.stderr, flush=True)
            results[mode] = run_mode(mode, args, Path(scratch))
    text = report(args, results)
    print(text)
    if args.write:
        out = ROOT / "bench" / "results" / f"voice_previews-{dt.date.today():%Y-%m-%d}.md"
        with contextlib.suppress(FileNotFoundError):
            text = out.read_text() + "\n" + text
        out.write_text(text)


if __name__ == "__main__":
    main()
