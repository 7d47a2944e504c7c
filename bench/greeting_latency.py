"""How long a callee waits for the greeting when many calls are answered together.

A private lab Asterisk and, for each step and each mode, a fresh ``voicedock serve`` process
configured from ``voicedock.example.toml`` as a user runs it (SQLite, or with ``--database
postgres`` a fresh database of a private PostgreSQL; the offline voice: Piper,
the example's "Customer Support" assistant and its first message), with only what a node
carrying ``max(--steps)`` calls at once needs changed: the trunk's ``max_cps = 0`` and
``max_channels``, the number's and the organization's ``max_concurrent_calls``, no per-second
API limits, the lab's ports and credentials. Modes, side by side in one run, step by step:

* ``before``: ``[speech] presynthesis = false`` (the greeting synthesized after the answer);
* ``after``: ``presynthesis = true`` (synthesized while the call rings).

On a service without that setting (before pre-synthesis was built) only ``before`` runs, as
the service does without it.

Each step: one call first (the first call after start, reported apart), then N calls through
``POST /calls/outbound`` to the lab's answers-together party (``+31612345692``), which rings
until every one of them rings, then all answer on the bench's signal (a global variable set
over ARI; the party polls it every 0.1 s). Each party notes when it answered and when it first
heard voicedock's voice. Once every party heard it (or after a bound), every call gets
``end-call`` through REST and must end, and the PBX must hold none of their channels after.

Measured per call, from the call's own record (``GET /calls/{id}``): **answer → greeting**, from
its ``started_at`` (the engine's answer, as its ``status`` event to ``in-progress``) to the
``started_at`` of the assistant's first ``transcript`` event (its first audio handed to the
media leg).
Besides, from an AMI session of the bench's own (Asterisk's clock): the answer at the PBX, the
media leg created and up, the caller bridged with it (the media leg set-up after the answer);
from each call's stored ``timings`` (a service that has them): the answer → the media connected
and → the first audio written, as voicedock measured them; and at the far end: the party's
answer → its hearing the voice.

Usage: ``.venv/bin/python bench/greeting_latency.py [--steps 1,10,40,100]
[--modes before,after] [--out FILE] [--database sqlite|postgres] [--database-rtt-ms MS]``;
writes ``bench/results/greeting_latency-<date>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from delayed_tcp import DelayedRelay  # bench/, beside this script
from originate import machine, pct
from two_nodes import cpu_seconds

import voicedock
from deploy.test_compose_as_shipped import get_json, wait_healthy
from pg_server import free_port, fresh_database, start_postgres
from process_helpers import logged_process
from voicedock.config import SpeechSettings
from voicedock_lab.ami_probe import encode_action, split_messages
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings, free_port_range

ROOT = Path(__file__).resolve().parents[1]
PARTY = "+31612345692"  # the lab's answers-together party
EXAMPLE = ROOT / "voicedock.example.toml"
ASSISTANT = "Customer Support"  # the example's assistant (its first message is the greeting)
ORGANIZATION = "acme"
NOISE_REQUIRED_S = 0.1  # the party's WaitForNoise: the voice began this long before it returned
CLI = "import sys; from voicedock.cli import main; sys.exit(main())"
AT_ONCE = 25  # REST requests the bench sends at once
TERMINAL = ("ended", "failed")


def presynthesis_setting() -> bool:
    """The service under test has ``[speech] presynthesis``."""
    return hasattr(SpeechSettings(), "presynthesis")


def under_test(source: Path | None = None) -> str:
    """Which voicedock runs (this process's, or the checkout ``source``'s): its commit (and
    whether its source has changes not committed)."""
    source = source or Path(voicedock.__file__).resolve().parents[2]

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip()

    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", "src") else ""
    return f"the working tree at {git('rev-parse', '--short', 'HEAD')}{dirty}"


# -- the service, as a user runs it ----------------------------------------------------------


def node_config(path: Path, cap: int) -> Path:
    """The example configuration, with its caps raised to ``cap`` calls at once."""
    text = EXAMPLE.read_text()
    for pattern, value, count in (
        (r"^max_cps = \d+", "max_cps = 0", 1),
        (r"^max_channels = \d+", f"max_channels = {cap}", 1),
        (r"^max_concurrent_calls = \d+", f"max_concurrent_calls = {cap}", 2),  # number, org
        (r"^calls_per_second = \d+", "calls_per_second = 0", 1),
        (r"^organization_calls_per_second = \d+", "organization_calls_per_second = 0", 1),
    ):
        text, found = re.subn(pattern, value, text, flags=re.MULTILINE)
        assert found == count, f"{pattern}: {found} in the example, expected {count}"
    path.write_text(text)
    return path


def node_env(lab: LabAsterisk, port: int, database: str, mode: str) -> dict[str, str]:
    ari_user, ari_password = lab.ari_credentials
    ami_user, ami_secret = lab.ami_credentials
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEDOCK_")}
    env.update(
        {
            "VOICEDOCK_SERVER__PORT": str(port),
            "VOICEDOCK_DATABASE__URL": database,
            "VOICEDOCK_PBX__ASTERISK__ARI_URL": lab.ari_url,
            "VOICEDOCK_PBX__ASTERISK__ARI_USER": ari_user,
            "VOICEDOCK_PBX__ASTERISK__ARI_PASSWORD": ari_password,
            "VOICEDOCK_PBX__ASTERISK__APP": lab.settings.app_name,
            "VOICEDOCK_PBX__ASTERISK__AMI_HOST": lab.ami_host,
            "VOICEDOCK_PBX__ASTERISK__AMI_PORT": str(lab.ami_port),
            "VOICEDOCK_PBX__ASTERISK__AMI_USER": ami_user,
            "VOICEDOCK_PBX__ASTERISK__AMI_SECRET": ami_secret,
        }
    )
    if presynthesis_setting():
        env["VOICEDOCK_SPEECH__PRESYNTHESIS"] = "true" if mode == "after" else "false"
    return env


def issue_key(config: Path, env: dict[str, str]) -> str:
    """``voicedock keys create`` for the example's organization: the key (its last line)."""
    args = [sys.executable, "-c", CLI, "keys", "create", "--organization", ORGANIZATION]
    done = subprocess.run(
        [*args, "--config", str(config)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


# -- the lab, seen by the bench --------------------------------------------------------------


@dataclass
class PbxTimeline:
    """What Asterisk did, at its own clock (AMI ``Timestamp``): the first time each channel
    (by ``Uniqueid``: voicedock's channel ids) was created, changed state, entered a bridge."""

    first: dict[tuple[str, str], float] = field(default_factory=dict)

    def seen(self, event: dict[str, str]) -> None:
        uid, kind = event.get("Uniqueid", ""), event.get("Event", "")
        moment = float(event.get("Timestamp") or time.time())
        if kind == "Newchannel":
            what = "created"
        elif kind == "Newstate":
            what = f"state {event.get('ChannelStateDesc', '')}"
        elif kind == "BridgeEnter":
            what = "bridged"
        elif kind == "Hangup":
            what = "gone"
        else:
            return
        self.first.setdefault((uid, what), moment)

    def at(self, uid: str, what: str) -> float | None:
        return self.first.get((uid, what))


@contextlib.asynccontextmanager
async def observe_pbx(lab: LabAsterisk) -> AsyncIterator[PbxTimeline]:
    timeline = PbxTimeline()
    reader, writer = await asyncio.open_connection(lab.ami_host, lab.ami_port)
    user, secret = lab.ami_credentials
    await reader.readline()  # banner
    login = [("Action", "Login"), ("Username", user), ("Secret", secret), ("Events", "call")]
    writer.write(encode_action(login))
    await writer.drain()

    async def read() -> None:
        buffer = b""
        while chunk := await reader.read(65536):
            messages, buffer = split_messages(buffer + chunk)
            for message in messages:
                timeline.seen(message)

    task = asyncio.create_task(read())
    try:
        yield timeline
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class LabAri:
    """The bench's own ARI requests to the lab (the party's signal, its channels)."""

    def __init__(self, http: aiohttp.ClientSession, lab: LabAsterisk) -> None:
        user, password = lab.ari_credentials
        self.http, self.url = http, lab.ari_url
        self.auth = {"Authorization": aiohttp.encode_basic_auth(user, password)}

    async def signal(self, value: str) -> None:
        params = {"variable": "LAB_ANSWER", "value": value}
        url = f"{self.url}/asterisk/variable"
        async with self.http.post(url, params=params, headers=self.auth) as resp:
            assert resp.status == 204, await resp.text()

    async def channels(self) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.url}/channels", headers=self.auth) as resp:
            assert resp.status == 200, await resp.text()
            found: list[dict[str, Any]] = await resp.json()
            return found

    async def app_registered(self, app: str) -> bool:
        """The node's ARI application is registered: ``app`` on one node (SQLite), its own
        ``<app>-<node id>`` where nodes share a database (PostgreSQL)."""
        async with self.http.get(f"{self.url}/applications", headers=self.auth) as resp:
            names = {a["name"] for a in await resp.json()} if resp.status == 200 else set()
        return any(name == app or name.startswith(f"{app}-") for name in names)


# -- one round: n calls answered together ----------------------------------------------------


@dataclass
class Round:
    n: int
    placed: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    ringing_s: float = 0.0  # from the first POST to every party ringing
    answer_spread_s: float = 0.0  # first to last party answer
    greeting_ms: list[float] = field(default_factory=list)  # answer → greeting first audio
    no_greeting: int = 0
    heard_ms: list[float] = field(default_factory=list)  # party answer → party hears the voice
    not_heard: int = 0
    legs: dict[str, list[float]] = field(default_factory=dict)  # PBX answer → milestone, ms
    end_reasons: Counter[str] = field(default_factory=Counter)
    left_at_pbx: int = 0
    node_cpu_s: float = 0.0
    load: float = 0.0


def parse_time(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def answered_at(call: dict[str, Any]) -> float | None:
    """The engine's answer: the call's ``started_at`` (the same moment as its ``status`` event
    to ``in-progress``)."""
    if call.get("started_at"):
        return parse_time(call["started_at"])
    for event in call["events"]:
        if event["type"] == "status" and event["data"].get("to") == "in-progress":
            return parse_time(event["created_at"])
    return None


def greeting_at(call: dict[str, Any]) -> float | None:
    """The greeting's first audio: the assistant's first transcript message's ``started_at``."""
    starts = [
        parse_time(e["data"]["started_at"])
        for e in call["events"]
        if e["type"] == "transcript" and e["data"].get("role") == "assistant"
    ]
    return min(starts) if starts else None


def party_notes(recordings: Path) -> list[Path]:
    """What the parties wrote (``together-<uniqueid>.txt``), so far."""
    return list(recordings.glob("together-*.txt"))


def heard_times(files: Iterable[Path]) -> tuple[list[float], list[float], int]:
    """The parties' notes: answer moments (seconds of the UTC day), answer → voice ms, and how
    many heard nothing."""
    answers, heard, silent = [], [], 0
    for path in files:
        parts = path.read_text().split()
        if len(parts) < 3:
            continue
        answer, noise = (_day_seconds(p) for p in parts[:2])
        answers.append(answer)
        if parts[2] == "NOISE":
            heard.append(((noise - answer) % 86400 - NOISE_REQUIRED_S) * 1000)
        else:
            silent += 1
    return answers, heard, silent


def _day_seconds(clock: str) -> float:
    hours, minutes, seconds = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


async def bounded(work: Iterable[Awaitable[Any]], at_once: int = AT_ONCE) -> list[Any]:
    gate = asyncio.Semaphore(at_once)

    async def one(job: Awaitable[Any]) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(one(job) for job in work))


async def until(check: Callable[[], Awaitable[bool]], within: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every)
    return False


@dataclass
class Node:
    http: aiohttp.ClientSession
    base: str
    key: str
    assistant_id: str
    pid: int

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def place(self, into: Round) -> None:
        body = {"destination": PARTY, "assistant_id": self.assistant_id}
        url = f"{self.base}/calls/outbound"
        async with self.http.post(url, json=body, headers=self.headers()) as resp:
            found = await resp.json()
        if resp.status == 200:
            into.placed.append(str(found["call_id"]))
        else:
            into.refused[f"{resp.status} {found.get('error')}"] += 1

    async def end(self, call_id: str) -> None:
        url = f"{self.base}/calls/{call_id}/control"
        body = {"type": "end-call"}
        async with self.http.post(url, json=body, headers=self.headers()) as resp:
            await resp.read()

    async def statuses(self) -> dict[str, str]:
        found: dict[str, str] = {}
        cursor = ""
        while True:
            page = await get_json(self.http, f"{self.base}/calls?limit=1000{cursor}", self.key)
            found.update({c["id"]: c["status"] for c in page["calls"]})
            if not page.get("next_cursor"):
                return found
            cursor = f"&cursor={page['next_cursor']}"

    async def call(self, call_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await get_json(self.http, f"{self.base}/calls/{call_id}", self.key)
        return found


MILESTONES = (  # (label, channel suffix, what) after the answer at the PBX
    ("voicedock's answer stored", "", "engine"),
    ("media leg created", "-media", "created"),
    ("media leg up", "-media", "state Up"),
    ("caller bridged with it", "", "bridged"),
    ("media connected (stored)", "", "media_connected_ms"),
    ("greeting first audio", "", "greeting"),
    ("first audio written (stored)", "", "first_audio_ms"),
)
STORED = ("media_connected_ms", "first_audio_ms")  # the call's ``timings``, ms from its answer


async def with_timings(node: Node, placed: list[str], within: float = 15.0) -> list[dict[str, Any]]:
    """The calls' records, once each has its ``timings`` (stored with the record, a moment
    after the call ended; a service without them: at once)."""
    calls = await bounded((node.call(c) for c in placed), at_once=10)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        late = [i for i, call in enumerate(calls) if "timings" in call and call["timings"] is None]
        if not late:
            break
        await asyncio.sleep(0.5)
        again = await bounded((node.call(calls[i]["id"]) for i in late), at_once=10)
        for i, call in zip(late, again, strict=True):
            calls[i] = call
    return calls


async def run_round(node: Node, ari: LabAri, pbx: PbxTimeline, recordings: Path, n: int) -> Round:
    result = Round(n, load=os.getloadavg()[0])
    notes_before = set(party_notes(recordings))
    cpu0 = cpu_seconds(node.pid)
    await ari.signal("")
    began = time.monotonic()
    await bounded(node.place(result) for _ in range(n))
    parties: set[str] = set()  # the party's channels (its side of each call)

    async def all_ringing() -> bool:
        ringing = {
            str(c["id"])
            for c in await ari.channels()
            if c.get("dialplan", {}).get("exten") == PARTY and c.get("state") in ("Ring", "Ringing")
        }
        parties.update(ringing)
        return len(ringing) >= len(result.placed)

    assert await until(all_ringing, 60), "the parties did not all ring within 60 s"
    result.ringing_s = time.monotonic() - began
    await ari.signal("go")

    def notes() -> list[Path]:
        return [p for p in party_notes(recordings) if p not in notes_before]

    async def all_heard() -> bool:
        return len(notes()) >= len(result.placed)

    await until(all_heard, 75)  # each party listens 60 s at most
    await ari.signal("")
    await bounded(node.end(call_id) for call_id in result.placed)

    async def all_ended() -> bool:
        statuses = await node.statuses()
        return all(statuses.get(c) in TERMINAL for c in result.placed)

    await until(all_ended, 120, every=1.0)
    result.node_cpu_s = cpu_seconds(node.pid) - cpu0
    calls = await with_timings(node, result.placed)

    ours = set(result.placed) | {f"{c}-media" for c in result.placed}

    async def pbx_clear() -> bool:
        return not any(c["id"] in ours for c in await ari.channels())

    await until(pbx_clear, 15)
    result.left_at_pbx = sum(1 for c in await ari.channels() if c["id"] in ours)

    answers, result.heard_ms, result.not_heard = heard_times(notes())
    result.not_heard += len(result.placed) - len(answers)
    party_up = [t for uid in parties if (t := pbx.at(uid, "state Up")) is not None]
    result.answer_spread_s = max(party_up) - min(party_up) if party_up else 0.0
    for call in calls:
        result.end_reasons[str(call.get("end_reason"))] += 1
        answered, greeting = answered_at(call), greeting_at(call)
        if answered is None or greeting is None:
            result.no_greeting += 1
            continue
        result.greeting_ms.append((greeting - answered) * 1000)
        pbx_answer = pbx.at(call["id"], "state Up")
        if pbx_answer is None:
            continue
        timings = call.get("timings") or {}
        for label, suffix, what in MILESTONES:
            moment = {"engine": answered, "greeting": greeting}.get(what)
            if what in STORED:
                stored = timings.get(what)
                moment = None if stored is None else answered + stored / 1000
            elif moment is None:
                moment = pbx.at(call["id"] + suffix, what)
            if moment is not None:
                result.legs.setdefault(label, []).append((moment - pbx_answer) * 1000)
    return result


# -- one step in one mode: a fresh service -----------------------------------------------------


@dataclass
class Step:
    n: int
    mode: str
    first: Round | None = None  # the first call after the service started
    round: Round | None = None
    tracebacks: int = 0
    log_lines: Counter[str] = field(default_factory=Counter)  # WARNING / ERROR lines, by kind
    error: str = ""  # why the step did not finish


# Each step's fresh database, by the file an SQLite one would be.
Databases = Callable[[Path], Awaitable[str]]


async def sqlite_files(path: Path) -> str:
    return f"sqlite:///{path}"


@contextlib.contextmanager
def databases(kind: str, rtt_ms: float = 0.0) -> Iterator[Databases]:
    """Each step's fresh database: an SQLite file, or a database of one private PostgreSQL
    (``tests/pg_server``, started here; ``bench/call_capacity.py``'s too); ``rtt_ms``:
    the node reaches PostgreSQL through a relay that delays each round trip that long, as a
    server on another host (``delayed_tcp.py``)."""
    if kind == "sqlite":
        yield sqlite_files
        return
    server, stop = start_postgres()
    try:
        if not rtt_ms:
            yield lambda _path: fresh_database(server)
            return
        parts = urlsplit(server)
        assert parts.hostname is not None
        assert parts.port is not None
        with DelayedRelay(parts.hostname, parts.port, rtt_ms=rtt_ms) as relay:

            async def relayed(_path: Path) -> str:
                direct = urlsplit(await fresh_database(server))
                return urlunsplit(
                    direct._replace(netloc=f"{direct.username}@127.0.0.1:{relay.port}")
                )

            yield relayed
    finally:
        stop()


async def run_step(
    lab: LabAsterisk,
    pbx: PbxTimeline,
    workdir: Path,
    n: int,
    mode: str,
    cap: int,
    database: Databases = sqlite_files,
) -> Step:
    step = Step(n, mode)
    port = free_port()
    config = node_config(workdir / f"{mode}-{n}.toml", cap)
    env = node_env(lab, port, await database(workdir / f"{mode}-{n}.db"), mode)
    log = workdir / f"{mode}-{n}.log"
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-c", CLI, "serve", "--config", str(config)]
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            with logged_process(args, log, env=env) as process:
                await wait_healthy(http, base, process, log)
                ari = LabAri(http, lab)
                assert await until(lambda: ari.app_registered(lab.settings.app_name), 30)
                key = await asyncio.to_thread(issue_key, config, env)
                found = await get_json(http, f"{base}/assistants", key)
                assistant = next(a for a in found["assistants"] if a["name"] == ASSISTANT)
                node = Node(http, base, key, str(assistant["id"]), process.pid)
                async with asyncio.timeout(180 + 2 * n):
                    step.first = await run_round(node, ari, pbx, lab.recordings_dir, 1)
                    await asyncio.sleep(2)
                    step.round = await run_round(node, ari, pbx, lab.recordings_dir, n)
    finally:
        step.tracebacks, step.log_lines = read_log(log, f"greeting_latency-{mode}-{n}.log")
    return step


def read_log(log: Path, keep_as: str) -> tuple[int, Counter[str]]:
    """The service's log: its tracebacks and its WARNING / ERROR lines counted by kind (the
    message without the call's id); kept in the temporary directory as ``keep_as``."""
    text = log.read_text(errors="replace") if log.exists() else ""
    kinds: Counter[str] = Counter()
    for line in text.splitlines():
        level = next((x for x in (" WARNING ", " ERROR ") if x in line), None)
        if level is not None:
            kind = line.split(level, 1)[1].split(" [call ")[0]
            kinds[re.sub(r"call-[a-z]+-[A-Za-z0-9]+", "<call>", kind)[:120]] += 1
    if log.exists():
        shutil.copy(log, Path(tempfile.gettempdir()) / keep_as)
    return text.count("Traceback"), kinds


async def bench(
    lab: LabAsterisk,
    workdir: Path,
    steps: list[int],
    modes: list[str],
    database: Databases = sqlite_files,
) -> list[Step]:
    cap = max(steps) + 10
    done: list[Step] = []
    # The parties' ringing loop would log ~30 lines a second each: not the bench's cost.
    await asyncio.to_thread(lab.cli, "core set verbose 0")
    async with observe_pbx(lab) as pbx:
        for n in steps:
            for mode in modes:
                print(f"step {n} calls, {mode} ...", flush=True)
                try:
                    done.append(await run_step(lab, pbx, workdir, n, mode, cap, database))
                except Exception as exc:  # the step failed: the next ones still run
                    done.append(Step(n, mode, error=f"{type(exc).__name__}: {exc}"[:300]))
                    print(f"step {n} calls, {mode} failed: {done[-1].error}", flush=True)
    return done


# -- the report ------------------------------------------------------------------------------


def stats(values: list[float], scale: float = 1.0) -> str:
    if not values:
        return "—"
    p50, p95, top = (pct(values, 0.5), pct(values, 0.95), max(values))
    return f"{p50 / scale:.2f} / {p95 / scale:.2f} / {top / scale:.2f}"


def report(done: list[Step], command: str, started: str, database: str = "sqlite") -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    known = presynthesis_setting()
    lines = [
        f"# Greeting after the answer, many calls answered together, {now}",
        "",
        f"Machine: {machine()}, `nproc` = {os.cpu_count()} (shared: other work ran meanwhile)",
        f"Started {started}; voicedock under test: {under_test()}",
        "",
        f"Command: `{command}`",
        "",
        "A private lab Asterisk 22 on 127.0.0.1; per step and mode a fresh `voicedock serve` "
        "from `voicedock.example.toml` ("
        + (
            "SQLite"
            if database == "sqlite"
            else f"a fresh database of a private PostgreSQL{database.removeprefix('postgres')}"
        )
        + ", offline voice: Piper; the assistant "
        f'"{ASSISTANT}" and its first message), caps raised to carry the step. The lab party '
        f"`{PARTY}` rings until every call of the step rings, then all answer on one signal. "
        "Answer → greeting: from each call's record, its `started_at` (the answer) → "
        "the `started_at` of its first assistant `transcript` event (first audio handed to the "
        "media leg). The party's ear: its answer → it hears the voice (WaitForNoise, 100 ms "
        "subtracted), at the far end.",
        "",
    ]
    if not known:
        lines += [
            "This service has no `[speech] presynthesis` setting: only `before` (the greeting "
            "synthesized after the answer) is measured. **after** is recorded when "
            "pre-synthesis lands, with the same command.",
            "",
        ]
    lines += [
        "| calls answered together | mode | calls placed / refused | answers spread (s) "
        "| **answer → greeting p50 / p95 / max (s)** | no greeting | party's ear p50 / p95 / "
        "max (s) | heard nothing | first call after start (s) | node CPU (s) | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in done:
        r, first = step.round, step.first
        if r is None:
            lines.append(f"| {step.n} | {step.mode} | failed: {step.error} |||||||||")
            continue
        first_ms = first.greeting_ms if first is not None else []
        lines.append(
            f"| {r.n} | {step.mode} | {len(r.placed)} / {sum(r.refused.values())} "
            f"| {r.answer_spread_s:.2f} | **{stats(r.greeting_ms, 1000)}** | {r.no_greeting} "
            f"| {stats(r.heard_ms, 1000)} | {r.not_heard} "
            f"| {first_ms[0] / 1000 if first_ms else float('nan'):.2f} "
            f"| {r.node_cpu_s:.1f} | {r.load:.2f} |"
        )
    lines += [
        "",
        "The media leg after the answer (item 5): ms after the answer at the PBX (the callee's "
        "channel up, Asterisk's clock), p50 / p95 per milestone:",
        "",
        "| calls | mode | " + " | ".join(label for label, _, _ in MILESTONES) + " |",
        "|---|---|" + "---|" * len(MILESTONES),
    ]
    for step in done:
        r = step.round
        if r is None:
            continue
        cells = []
        for label, _, _ in MILESTONES:
            values = r.legs.get(label, [])
            cells.append(f"{pct(values, 0.5):.0f} / {pct(values, 0.95):.0f}" if values else "—")
        lines.append(f"| {r.n} | {step.mode} | " + " | ".join(cells) + " |")
    lines += ["", "How the calls ended, what the PBX kept, the service's log:", ""]
    for step in done:
        r = step.round
        if r is None:
            continue
        refused = f", refused {dict(r.refused)}" if r.refused else ""
        lines.append(
            f"- {r.n} calls, {step.mode}: end reasons {dict(r.end_reasons)}{refused}; "
            f"channels left at the PBX: {r.left_at_pbx}; all ringing "
            f"{r.ringing_s:.1f} s after the first POST; tracebacks in the log: {step.tracebacks}"
        )
        for kind, count in step.log_lines.most_common(6):
            lines.append(f"  - {count} × `{kind}`")
    lines += ["", f"Load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", ""]
    return "\n".join(lines)


@contextlib.contextmanager
def lab_asterisk(ports: int) -> Iterator[LabAsterisk]:
    """A private lab with ``ports`` RTP ports, its dialplan this checkout's (the answers-together
    party), whichever voicedock is under test."""
    settings = LabSettings(instance=f"bench-{os.getpid()}").with_free_ports()
    base = free_port_range(ports)
    settings = dataclasses.replace(settings, rtp_start=base, rtp_end=base + ports - 1)
    lab = LabAsterisk(settings, project_root=ROOT, verbose=False)
    try:
        lab.up(timeout=60)
        yield lab
    finally:
        lab.down()
        shutil.rmtree(settings.instance_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", default="1,10,40,100")
    parser.add_argument("--modes", default="before,after")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-rtt-ms", type=float, default=0.0)
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    modes = [m for m in args.modes.split(",") if m == "before" or presynthesis_setting()]
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    # Each call holds two RTP streams at the lab (voicedock's leg to the carrier and the
    # party's), two ports each, plus the first call of each step.
    with (
        lab_asterisk(8 * max(steps) + 200) as lab,
        tempfile.TemporaryDirectory() as workdir,
        databases(args.database, args.database_rtt_ms) as database,
    ):
        done = asyncio.run(bench(lab, Path(workdir), steps, modes, database))
    command = (
        f".venv/bin/python bench/greeting_latency.py --steps {args.steps} --modes {args.modes}"
        + ("" if args.database == "sqlite" else f" --database {args.database}")
        + (f" --database-rtt-ms {args.database_rtt_ms:g}" if args.database_rtt_ms else "")
    )
    where = args.database
    if args.database_rtt_ms:
        where = f"{where} (each round trip {args.database_rtt_ms:g} ms)"
    text = report(done, command, started, where)
    print(text)
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    out = args.out or Path(__file__).parent / "results" / f"greeting_latency-{day}.md"
    out.write_text(text)


if __name__ == "__main__":
    main()
