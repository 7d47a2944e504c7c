"""The soak: many calls at once for a long time through real voicedock nodes; nothing lost or stuck.

Shared by ``bench/soak.py`` (100 calls at once for 30 minutes by default, its report and plots)
and ``tests/soak/test_soak_short.py`` (a short version in the test suite). One or more node
processes (``nodes.node_process``: ``voicedock serve`` with fake speech — an STT that hears the
parties' sentence in every utterance, the echo LLM, a tone TTS — so a call costs its media, VAD,
endpointing, barge-in, conversation, store and webhooks, no speech model) on one PostgreSQL and
the lab Asterisk, each its own ARI application, a webhook endpoint on the harness's receiver.

``calls_at_once`` slots each run calls one after another until ``minutes`` have passed:

* most place an outbound call through ``POST /calls/outbound`` (to a live node, in turn) to the
  lab's soak party, which answers and says a sentence every ~4 s (the assistant answers each,
  the party talks over it); while the call lasts (``min_call_s``-``max_call_s``) it gets ``say``
  and ``inject-context`` commands through ``POST /calls/{id}/control`` (to any live node), and
  ends with ``end-call`` or a blind ``transfer`` to the lab's ``sales`` agent;
* some call the leaving soak party, which hangs up by itself after a random time in the same
  range (``remote-hangup``);
* ``inbound_share`` of the slots make inbound calls: the lab's carrier calls the node's number
  (the production dialplan hands it to a live node), the caller talks and hangs up after its
  time.

With ``kill_node_at_min`` (two nodes or more), the first node is killed (SIGKILL) then: its calls
must end ``node-lost``, settled by a survivor (docs/nodes.md), and the run goes on on the others.

With ``roll_at_s`` (two nodes or more) the nodes are restarted one at a time, as a rolling
upgrade does (docs/upgrades.md): each in turn is taken out of the harness's rotation (as a load
balancer does once ``/health`` says it drains), sent ``SIGTERM``, waited for (it drains: its
calls finish as asked, then it exits 0) and started again from this tree, and serves
``roll_serve_s`` before the next one goes; the calls go on ``after_roll_s`` after the last. The
nodes' first runs may be of another source tree (``previous``: the previous version), so that
the roll is an upgrade. With ``campaign_at_once``, a campaign of the organization dials the
leaving soak party beside the calls, at most that many at once, on every node; it is cancelled
when the calls stop, and each of its contacts must then be done after exactly one call, or
cancelled before any.

At the end every call placed or answered must be over (``GET /calls``: nothing connecting or in
progress), the lab must hold no channel or bridge it did not hold before, every call must have
exactly one end-of-call report at the receiver (one webhook id; a redelivery of the same id is
counted apart), each call's end reason must be one the run asked for, and the nodes' logs are
counted by level and kind. Every ``sample_every`` seconds the RSS and open file descriptors of
each node (and of Asterisk) are sampled from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from deploy.test_compose_as_shipped import TERMINAL, wait_healthy
from fakes.world import ACME_NUMBERS, SUPPORT_ID
from nodes.node_process import HEARING, acme_api_key, node_process
from nodes.test_nodes_lab import ari_auth, lab_ids, some_nodes
from voicedock.domain.webhooks import generate_secret
from voicedock_lab.server import LabAsterisk
from webhooks.receiver import Receiver

TALKER = "+31612345693"  # the lab's soak party: talks until hung up
LEAVER = "+31612345694"  # the same, hangs up by itself after LAB_SOAK_MIN..MAX seconds
TRANSFER_TARGET = "sales"  # a lab agent: answers, plays a prompt, hangs up ~17 s later
INBOUND_DID = ACME_NUMBERS[0]
NODE_NAMES = ("a", "b", "c", "d")
END_OF_CALL = "end-of-call-report"


def soak_caller(channel: str, seconds: float) -> tuple[dict[str, str], dict[str, Any]]:
    """ARI ``POST /channels``'s query and body for an inbound caller: the lab's carrier calls
    ``INBOUND_DID`` as ``channel`` and hangs up after ``seconds``."""
    params = {
        "endpoint": f"PJSIP/{INBOUND_DID}@pstn",
        "context": "lab-soak-caller",
        "extension": "s",
        "priority": "1",
        "callerId": "+31612345678",
        "channelId": channel,
        "timeout": "30",
    }
    return params, {"variables": {"LAB_SOAK_S": f"{seconds:.0f}"}}


# How each kind of call must end; any other end is a call lost.
EXPECTED_ENDS = {
    "talker": {"api-end-call", "transferred"},
    "leaver": {"remote-hangup"},
    "inbound": {"remote-hangup"},
    "campaign": {"remote-hangup"},
}
CAMPAIGN_CONTACTS = 1000  # more than a run dials: it is cancelled when the calls stop
LOG_LEVELS = (" WARNING ", " ERROR ", " CRITICAL ")


@dataclass(frozen=True)
class Plan:
    calls_at_once: int = 100
    minutes: float = 30.0
    min_call_s: float = 30.0
    max_call_s: float = 120.0
    nodes: int = 1
    kill_node_at_min: float | None = None
    inbound_share: float = 0.1  # of the slots
    leaver_share: float = 0.15  # of the outbound calls
    transfer_share: float = 0.1  # of the talkers' ends
    commands_per_minute: float = 2.0  # say / inject-context per call
    sample_every: float = 3.0
    settle_s: float = 90.0  # after the last call's planned end: everything must be over
    seed: int = 1
    # A rolling restart: from then, each node in turn drained, waited for and started again.
    roll_at_s: float | None = None
    roll_serve_s: float = 15.0  # each restarted node serves this long before the next goes
    after_roll_s: float = 20.0  # the calls go on this long after the last one serves again
    drain_within_s: float = 90.0  # from SIGTERM to the node's exit
    campaign_at_once: int = 0  # a campaign's calls at once beside the run's (0: none)

    def __post_init__(self) -> None:
        assert 1 <= self.nodes <= len(NODE_NAMES)
        assert self.kill_node_at_min is None or self.nodes >= 2, "a survivor is needed"
        assert self.roll_at_s is None or self.nodes >= 2, "a node serves while one restarts"
        assert self.roll_at_s is None or self.kill_node_at_min is None


@dataclass
class Call:
    id: str
    kind: str  # talker, leaver (outbound) or inbound (its lab caller's channel id until known)
    node: str  # the node it was placed through (inbound: as the call's record tells)
    placed_at: float
    planned_s: float
    ending: str = ""  # what the harness did to end it: end-call, transfer, party, caller


@dataclass
class Run:
    """One process of a node, from this tree or another source tree (``source``)."""

    node: str
    label: str  # the node's name; "a#2" for its second run
    log: Path
    source: str  # "this tree", or what the other tree is (the previous version)
    started: float  # wall clock
    stopped: float | None = None  # wall clock of its SIGTERM
    exit_code: int | None = None
    drained_s: float | None = None  # from its SIGTERM to its exit

    def served(self, node: str, created: float) -> bool:
        """A call of ``node`` created at ``created`` (wall clock) was this run's."""
        return node == self.node and self.started <= created < (self.stopped or float("inf"))


@dataclass
class Sample:
    at: float  # seconds since the run began
    process: str  # node name, or "asterisk"
    rss_mb: float
    fds: int
    calls_up: int


@dataclass
class Result:
    plan: Plan
    began: float = 0.0
    window_s: float = 0.0  # when the last call was started (seconds since the run began)
    finished_s: float = 0.0  # when every call had been waited for
    killed_at_s: float | None = None
    killed_node: str = ""
    calls: dict[str, Call] = field(default_factory=dict)  # by call id (outbound) as placed
    inbound_started: int = 0
    inbound_not_answered: int = 0  # lab callers whose call voicedock never answered
    refused: Counter[str] = field(default_factory=Counter)  # placements refused, by answer
    commands: Counter[str] = field(default_factory=Counter)  # "<type> <status>"
    commands_failed: Counter[str] = field(default_factory=Counter)  # unexpected answers
    most_up: int = 0
    # The end state
    listed: dict[str, dict[str, Any]] = field(default_factory=dict)  # GET /calls, by id
    stuck: list[str] = field(default_factory=list)  # still connecting / in progress
    end_reasons: Counter[str] = field(default_factory=Counter)  # "<kind>: <status> <reason>"
    unexpected_ends: dict[str, str] = field(default_factory=dict)  # call id -> why
    settled_late: list[str] = field(default_factory=list)  # killed node's calls, too late
    left_at_pbx: list[str] = field(default_factory=list)
    webhooks: Counter[str] = field(default_factory=Counter)  # deliveries by event type
    reports_missing: list[str] = field(default_factory=list)
    reports_twice: list[str] = field(default_factory=list)  # two distinct reports for a call
    redeliveries: int = 0  # the same webhook id delivered again (at-least-once)
    reports_unknown: int = 0  # reports for calls GET /calls does not list
    webhooks_rejected: int = 0  # deliveries whose signature did not verify
    samples: list[Sample] = field(default_factory=list)
    log_lines: dict[str, Counter[str]] = field(default_factory=dict)  # node -> kind -> count
    log_tolerated: dict[str, Counter[str]] = field(default_factory=dict)  # not counted
    tracebacks: dict[str, int] = field(default_factory=dict)
    node_exits: dict[str, int | None] = field(default_factory=dict)  # at the end (None: alive)
    runs: list[Run] = field(default_factory=list)  # every node process, in start order
    served: Counter[str] = field(default_factory=Counter)  # calls by the run (label) they had
    campaign_id: str = ""
    contacts: Counter[str] = field(default_factory=Counter)  # "<state> <outcome> <attempts>"
    contacts_wrong: list[str] = field(default_factory=list)  # dialed otherwise than once
    # Each live node's open files before the first call and once every call was over and the
    # harness's own connections to it closed: (count, by kind).
    fds_before: dict[str, tuple[int, Counter[str]]] = field(default_factory=dict)
    fds_after: dict[str, tuple[int, Counter[str]]] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        return len(self.listed)

    def assert_nothing_lost(self) -> None:
        """Every zero-loss count is 0; otherwise the first of what each counts."""
        losses = {what: n for what, n in self.losses().items() if n}
        assert not losses, (
            losses,
            dict(list(self.unexpected_ends.items())[:5]),
            self.stuck[:5],
            self.left_at_pbx[:5],
            self.reports_missing[:5],
            self.contacts_wrong[:5],
            dict(self.commands_failed),
            dict(self.errors_logged()),
            [(r.label, r.exit_code, r.drained_s) for r in self.runs if r.stopped],
        )

    def errors_logged(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for node, kinds in self.log_lines.items():
            for kind, count in kinds.items():
                if not kind.startswith("WARNING"):
                    found[f"{node}: {kind}"] += count
        return found

    def losses(self) -> dict[str, int]:
        """The zero-loss counts: each must be 0."""
        return {
            "calls stuck (connecting / in progress at the end)": len(self.stuck),
            "calls that ended otherwise than asked (or failed)": len(self.unexpected_ends),
            "killed node's calls not settled node-lost in time": len(self.settled_late),
            "channels or bridges left at the PBX": len(self.left_at_pbx),
            "calls without an end-of-call report": len(self.reports_missing),
            "calls with two different end-of-call reports": len(self.reports_twice),
            "end-of-call reports for unknown calls": self.reports_unknown,
            "webhooks whose signature did not verify": self.webhooks_rejected,
            "commands answered unexpectedly": sum(self.commands_failed.values()),
            "error-level log lines": sum(self.errors_logged().values()),
            "tracebacks in the logs": sum(self.tracebacks.values()),
            "lab inbound calls never answered": self.inbound_not_answered,
            "nodes that did not drain and exit 0": sum(
                r.stopped is not None and r.exit_code != 0 for r in self.runs
            ),
            "campaign contacts dialed otherwise than once": len(self.contacts_wrong),
        }


# -- reading processes -------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_kinds(pid: int) -> tuple[int, Counter[str]]:
    """The process's open files: how many, and how many of each kind (socket, pipe, ...)."""
    kinds: Counter[str] = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            kinds[target.split(":")[0] if ":" in target else "file"] += 1
    return sum(kinds.values()), kinds


def count_log(text: str) -> tuple[Counter[str], int]:
    """A node's log: its WARNING / ERROR / CRITICAL lines by kind (the message with call ids
    and numbers masked), and its tracebacks."""
    kinds: Counter[str] = Counter()
    for line in text.splitlines():
        level = next((x for x in LOG_LEVELS if x in line), None)
        if level is None:
            continue
        message = line.split(level, 1)[1].split(" [call ")[0]
        message = re.sub(r"call-[a-z]+-[A-Za-z0-9]+", "<call>", message)
        message = re.sub(r"\d+(\.\d+)?", "N", message)
        kinds[f"{level.strip()} {message[:140]}"] += 1
    return kinds, text.count("Traceback")


# -- the run -----------------------------------------------------------------------------------


class Soak:
    """One soak run; ``run()`` fills ``self.result``."""

    def __init__(
        self,
        plan: Plan,
        lab: LabAsterisk,
        database: str,
        workdir: Path,
        previous: tuple[Path, str] | None = None,
    ) -> None:
        """``previous``: the source tree the nodes' first runs are of, and what it is (the
        previous version, for a rolling upgrade); this tree's by default."""
        self.plan, self.lab, self.database, self.workdir = plan, lab, database, workdir
        self.previous = previous
        self.configs: dict[str, Path] = {}
        self.stack = ExitStack()
        # The calls stop being placed then (a rolling restart sets it once it is done).
        self.calls_until = float("inf")
        self.result = Result(plan)
        self.random = random.Random(plan.seed)
        self.names = NODE_NAMES[: plan.nodes]
        self.ports: dict[str, int] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.dead: set[str] = set()
        self.key = ""
        self.http: aiohttp.ClientSession | None = None
        self.hook = Receiver(generate_secret())
        self.up: set[str] = set()  # in progress at the last look
        self.connecting: set[str] = set()
        self.looked_at = 0.0  # monotonic start of the last complete look
        self.turn = itertools.count()
        self.inbound_numbers = itertools.count(1)
        self.wall_began = 0.0

    # -- small helpers

    def now(self) -> float:
        return time.monotonic() - self.result.began

    def live(self) -> list[str]:
        return [n for n in self.names if n not in self.dead]

    def base(self, node: str) -> str:
        return f"http://127.0.0.1:{self.ports[node]}"

    def any_node(self) -> str:
        live = self.live()
        return live[next(self.turn) % len(live)]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self.http is not None
        return self.http

    async def list_calls(self, node: str, status: str = "") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = ""
        query = f"&status={status}" if status else ""
        while True:
            url = f"{self.base(node)}/calls?limit=1000{query}{cursor}"
            async with self.session.get(url, headers=self.headers()) as resp:
                assert resp.status == 200, await resp.text()
                page = await resp.json()
            found += page["calls"]
            if not page.get("next_cursor"):
                return found
            cursor = f"&cursor={page['next_cursor']}"

    async def ari(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        url = f"{self.lab.ari_url}{path}"
        headers = ari_auth(self.lab)
        async with self.session.request(method, url, headers=headers, **kwargs) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text.startswith(("{", "[")) else text)

    # -- watching

    async def watch_calls(self) -> None:
        """Every second: which calls are connecting and in progress (any live node answers)."""
        while True:
            began = time.monotonic()
            with contextlib.suppress(aiohttp.ClientError, AssertionError, TimeoutError):
                node = self.any_node()
                # Connecting first: a call answered between the two looks is then in progress.
                ringing = {c["id"] for c in await self.list_calls(node, "connecting")}
                up = {c["id"] for c in await self.list_calls(node, "in-progress")}
                self.up, self.connecting, self.looked_at = up, ringing, began
                self.result.most_up = max(self.result.most_up, len(up))
            await asyncio.sleep(1.0)

    def over(self, call: Call) -> bool:
        """The call was neither connecting nor in progress at a look begun after it was placed."""
        return (
            self.looked_at > call.placed_at
            and call.id not in self.up
            and call.id not in self.connecting
        )

    async def wait_for(self, check: Callable[[], bool], within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if check():
                return True
            await asyncio.sleep(0.5)
        return check()

    async def sample(self) -> None:
        asterisk = (await asyncio.to_thread(self.lab.status)).pid
        while True:
            pids = {n: p.pid for n, p in self.processes.items() if n not in self.dead}
            if asterisk:
                pids["asterisk"] = asterisk
            for name, pid in pids.items():
                with contextlib.suppress(OSError):
                    self.result.samples.append(
                        Sample(self.now(), name, rss_mb(pid), open_fds(pid), len(self.up))
                    )
            await asyncio.sleep(self.plan.sample_every)

    # -- one call

    async def post(self, node: str, path: str, body: dict[str, Any]) -> tuple[int, str]:
        """``POST path`` on ``node``'s REST API: (status, body text)."""
        url = f"{self.base(node)}{path}"
        async with self.session.post(url, json=body, headers=self.headers()) as resp:
            return resp.status, await resp.text()

    async def control(self, call: Call, body: dict[str, Any]) -> int:
        """A command through any live node; 409 is expected once the call is over."""
        node = self.any_node()
        kind = body["type"]
        try:
            status, answer = await self.post(node, f"/calls/{call.id}/control", body)
        except aiohttp.ClientError as exc:
            if node in self.dead:
                return 0
            self.result.commands_failed[f"{kind}: {type(exc).__name__}"] += 1
            return 0
        self.result.commands[f"{kind} {status}"] += 1
        killed = self.result.killed_node
        expected = status == 200 or (
            status == 409 and (call.kind != "talker" or call.node == killed or self.over(call))
        )
        if status == 503 and killed and call.node == killed:
            expected = True  # "Node unavailable" while the killed node's lease runs out
        if not expected:
            self.result.commands_failed[f"{kind} {status}: {answer[:160]}"] += 1
        return status

    async def place(self, destination: str) -> tuple[str, str] | None:
        """A call placed through a live node: (call id, node), None when refused."""
        for _ in range(20):
            node = self.any_node()
            body = {"destination": destination, "assistant_id": SUPPORT_ID}
            try:
                status, answer = await self.post(node, "/calls/outbound", body)
            except aiohttp.ClientError as exc:
                if node not in self.dead:
                    self.result.refused[f"{type(exc).__name__}"] += 1
                await asyncio.sleep(1.0)
                continue
            if status == 200:
                return str(json.loads(answer)["call_id"]), node
            self.result.refused[f"{status} {answer[:120]}"] += 1
            if status in (429, 503):
                await asyncio.sleep(1.0)
                continue
            return None
        return None

    async def outbound(self) -> None:
        leaver = self.random.random() < self.plan.leaver_share
        planned = self.random.uniform(self.plan.min_call_s, self.plan.max_call_s)
        placed = await self.place(LEAVER if leaver else TALKER)
        if placed is None:
            return
        call = Call(
            placed[0], "leaver" if leaver else "talker", placed[1], time.monotonic(), planned
        )
        self.result.calls[call.id] = call
        answered = await self.wait_for(lambda: call.id in self.up or self.over(call), 60)
        if not answered or self.over(call):
            return  # judged at the end from the call's record
        began = time.monotonic()
        commands = max(0, round(self.plan.commands_per_minute * planned / 60))
        moments = sorted(self.random.uniform(2, max(3.0, planned - 3)) for _ in range(commands))
        for moment in moments:
            await asyncio.sleep(max(0.0, began + moment - time.monotonic()))
            if self.over(call):
                break
            if self.random.random() < 0.5:
                await self.control(call, {"type": "say", "content": "One moment please."})
            else:
                trigger = self.random.random() < 0.5
                body = {
                    "type": "inject-context",
                    "content": "The caller is a customer since 2019.",
                    "trigger_response": trigger,
                }
                await self.control(call, body)
        if call.kind == "leaver":
            call.ending = "party"
            await self.wait_for(lambda: self.over(call), self.plan.max_call_s + 30)
            return
        await asyncio.sleep(max(0.0, began + planned - time.monotonic()))
        if self.random.random() < self.plan.transfer_share:
            call.ending = "transfer"
            body = {"type": "transfer", "destination": TRANSFER_TARGET, "mode": "blind"}
            status = await self.control(call, body)
            if status == 200 and await self.wait_for(lambda: self.over(call), 30):
                return
        call.ending = "end-call"
        await self.control(call, {"type": "end-call"})
        await self.wait_for(lambda: self.over(call), 30)

    async def inbound(self) -> None:
        """The lab's carrier calls the node's number; the caller hangs up after its time."""
        planned = self.random.uniform(self.plan.min_call_s, self.plan.max_call_s)
        channel = f"soak-in-{os.getpid()}-{next(self.inbound_numbers)}"
        params, body = soak_caller(channel, planned)
        status, _ = await self.ari("POST", "/channels", params=params, json=body)
        if status != 200:
            self.result.refused[f"inbound originate {status}"] += 1
            await asyncio.sleep(1.0)
            return
        self.result.inbound_started += 1
        answered = False
        deadline = time.monotonic() + planned + 60
        while time.monotonic() < deadline:
            status, found = await self.ari("GET", f"/channels/{channel}")
            if status == 404:
                break
            answered = answered or (isinstance(found, dict) and found.get("state") == "Up")
            await asyncio.sleep(2.0)
        else:  # still there: hang it up (counted at the end if anything of it stays)
            await self.ari("DELETE", f"/channels/{channel}")
        if not answered:
            self.result.inbound_not_answered += 1

    async def slot(self, number: int) -> None:
        inbound = number < round(self.plan.calls_at_once * self.plan.inbound_share)
        # Spread the first calls over the first minimum call length.
        await asyncio.sleep(self.random.uniform(0, self.plan.min_call_s))
        while time.monotonic() < self.calls_until:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                await (self.inbound() if inbound else self.outbound())
            await asyncio.sleep(0.2)

    async def kill_later(self, at_s: float) -> None:
        await asyncio.sleep(max(0.0, at_s - self.now()))
        victim = self.names[0]
        self.dead.add(victim)
        self.processes[victim].send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.processes[victim].wait, 10)
        self.result.killed_at_s, self.result.killed_node = self.now(), victim

    def start_node(self, name: str, source: tuple[Path, str] | None = None) -> Run:
        """A process of node ``name`` (from ``source``'s tree, else this one's)."""
        runs = sum(r.node == name for r in self.result.runs)
        label = name if not runs else f"{name}#{runs + 1}"
        log = self.workdir / f"{label}.log"
        tree, what = source or (None, "this tree")
        process = self.stack.enter_context(node_process(self.configs[name], log, tree))
        self.processes[name] = process
        run = Run(name, label, log, what, time.time())
        self.result.runs.append(run)
        return run

    async def roll(self) -> None:
        """Each node in turn: out of the rotation, drained (SIGTERM), waited for, started
        again from this tree; then the calls go on ``after_roll_s``."""
        plan = self.plan
        assert plan.roll_at_s is not None
        await asyncio.sleep(max(0.0, plan.roll_at_s - self.now()))
        for name in self.names:
            old = next(r for r in reversed(self.result.runs) if r.node == name)
            process = self.processes[name]
            self.dead.add(name)  # as a load balancer takes it out: /health says it drains
            old.stopped = time.time()
            process.send_signal(signal.SIGTERM)
            try:
                old.exit_code = await asyncio.to_thread(process.wait, plan.drain_within_s)
            except subprocess.TimeoutExpired:
                tail = old.log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"node {name} did not drain in time:\n{tail}") from None
            old.drained_s = time.time() - old.stopped
            run = self.start_node(name)
            await wait_healthy(self.session, self.base(name), self.processes[name], run.log)
            self.dead.discard(name)
            await self.restarted(run)
            await asyncio.sleep(plan.roll_serve_s)
        self.calls_until = time.monotonic() + plan.after_roll_s

    async def restarted(self, run: Run) -> None:
        """A node of a rolling restart serves again (for a test to look at the database)."""

    async def campaign(self) -> None:
        """The campaign, dialing the leaving party beside the calls until they stop."""
        body = {
            "name": "Soak",
            "assistant_id": SUPPORT_ID,
            "max_concurrent": self.plan.campaign_at_once,
            "contacts": [{"destination": LEAVER} for _ in range(CAMPAIGN_CONTACTS)],
        }
        status, answer = await self.post(self.any_node(), "/campaigns", body)
        assert status == 201, answer
        self.result.campaign_id = json.loads(answer)["id"]
        while time.monotonic() < self.calls_until:
            await asyncio.sleep(0.5)
        path = f"/campaigns/{self.result.campaign_id}/cancel"
        status, answer = await self.post(self.any_node(), path, {})
        assert status == 200, answer

    # -- the end

    async def judge(self, before: set[str]) -> None:
        r = self.result
        node = self.live()[0]

        async def nothing_live() -> bool:
            calls = await self.list_calls(node)
            return all(c["status"] in TERMINAL for c in calls)

        await self.until(nothing_live, self.plan.settle_s)
        listed = await self.list_calls(node)
        r.listed = await self.details(node, [c["id"] for c in listed])
        r.stuck = sorted(i for i, c in r.listed.items() if c["status"] not in TERMINAL)

        async def pbx_clear() -> bool:
            return not (await lab_ids(self.session, self.lab) - before)

        await self.until(pbx_clear, 30)
        r.left_at_pbx = sorted(await lab_ids(self.session, self.lab) - before)

        def reported() -> set[str]:
            return {
                body["call_id"]
                for body in (json.loads(x.body) for x in self.hook.requests)
                if body["type"] == END_OF_CALL
            }

        async def all_reported() -> bool:
            return set(r.listed) <= reported()

        await self.until(all_reported, 60)
        await asyncio.sleep(3)  # a duplicate would come now
        reports: dict[str, set[str]] = {}
        seen_ids: Counter[str] = Counter()
        for received in self.hook.requests:
            body = json.loads(received.body)
            r.webhooks[body["type"]] += 1
            seen_ids[received.msg_id] += 1
            if body["type"] == END_OF_CALL:
                reports.setdefault(body["call_id"], set()).add(received.msg_id)
        r.redeliveries = sum(n - 1 for n in seen_ids.values())
        r.webhooks_rejected = self.hook.rejected
        r.reports_missing = sorted(set(r.listed) - set(reports))
        r.reports_twice = sorted(i for i, ids in reports.items() if len(ids) > 1)
        r.reports_unknown = len(set(reports) - set(r.listed))

        for call_id, listed in r.listed.items():
            call = r.calls.get(call_id)
            kind = call.kind if call is not None else str(listed.get("direction"))
            if listed.get("campaign_id"):
                kind = "campaign"
            created = _epoch(listed["created_at"])
            for run in r.runs:
                if run.served(str(listed.get("node")), created):
                    r.served[run.label] += 1
            end = f"{listed['status']} {listed.get('end_reason')}"
            r.end_reasons[f"{kind}: {end}"] += 1
            owner = listed.get("node")
            expected = EXPECTED_ENDS.get(kind, set())
            if r.killed_node and self.served_by_killed(call, listed):
                expected = expected | {"node-lost"}
            if listed["status"] != "ended" or listed.get("end_reason") not in expected:
                r.unexpected_ends[call_id] = f"{kind} via {owner}: {end}, {listed.get('error')}"
        if r.killed_node and r.killed_at_s is not None:
            r.settled_late = self.node_lost_late()
        if r.campaign_id:
            await self.judge_contacts(node)

    async def judge_contacts(self, node: str) -> None:
        """Each contact of the campaign done after exactly one call (answered) or cancelled
        before any, and no call of it twice."""
        r = self.result
        url = f"{self.base(node)}/campaigns/{r.campaign_id}/contacts?limit={CAMPAIGN_CONTACTS}"
        async with self.session.get(url, headers=self.headers()) as resp:
            assert resp.status == 200, await resp.text()
            contacts = (await resp.json())["contacts"]
        assert len(contacts) == CAMPAIGN_CONTACTS
        calls = Counter(c["call_id"] for c in contacts if c.get("call_id"))
        for contact in contacts:
            shape = (contact["state"], contact.get("outcome"), contact["attempts"])
            r.contacts[" ".join(map(str, shape))] += 1
            once = shape == ("done", "answered", 1) and calls[contact["call_id"]] == 1
            if not once and shape != ("done", "cancelled", 0):
                r.contacts_wrong.append(f"{contact['id']}: {shape}")

    def served_by_killed(self, call: Call | None, listed: dict[str, Any]) -> bool:
        """The call may have been the killed node's: placed through it, or an inbound call
        created before the kill (its record names the survivor that settled it)."""
        if call is not None:
            return call.node == self.result.killed_node
        assert self.result.killed_at_s is not None
        killed_wall = self.wall_began + self.result.killed_at_s
        return _epoch(listed["created_at"]) < killed_wall

    def node_lost_late(self) -> list[str]:
        """The killed node's calls ended node-lost more than 30 s after the kill (docs/nodes.md:
        about 15 s, 22 s at most with the default lease), from the records' ``ended_at``."""
        r = self.result
        assert r.killed_at_s is not None
        killed_wall = self.wall_began + r.killed_at_s
        return sorted(
            call_id
            for call_id, listed in r.listed.items()
            if listed.get("end_reason") == "node-lost"
            and listed.get("ended_at")
            and _epoch(listed["ended_at"]) - killed_wall > 30
        )

    async def details(self, node: str, call_ids: list[str]) -> dict[str, dict[str, Any]]:
        """``GET /calls/{id}`` of each call (the list's items have no end reason nor node)."""
        gate = asyncio.Semaphore(8)
        found: dict[str, dict[str, Any]] = {}

        async def one(call_id: str) -> None:
            async with (
                gate,
                self.session.get(
                    f"{self.base(node)}/calls/{call_id}", headers=self.headers()
                ) as resp,
            ):
                assert resp.status == 200, await resp.text()
                call = await resp.json()
            call.pop("events", None)  # the timeline is not needed, and large
            call.pop("messages", None)
            found[call_id] = call

        await asyncio.gather(*(one(c) for c in call_ids))
        return found

    async def until(self, check: Callable[[], Awaitable[bool]], within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                if await check():
                    return True
            await asyncio.sleep(1.0)
        return False

    def tolerated(self, run: Run) -> tuple[str, ...]:
        """Kinds of log line (``count_log``'s, by their start) not counted against ``run``."""
        return ()

    def read_logs(self) -> None:
        r = self.result
        for run in r.runs:
            text = run.log.read_text(errors="replace") if run.log.exists() else ""
            kinds, r.tracebacks[run.label] = count_log(text)
            allowed = self.tolerated(run)
            r.log_tolerated[run.label] = Counter(
                {kind: n for kind, n in kinds.items() if kind.startswith(allowed)}
            )
            r.log_lines[run.label] = kinds - r.log_tolerated[run.label]

    # -- the whole run

    async def run(self) -> Result:
        r, plan = self.result, self.plan
        await self.hook.start()
        self.ports, configs = some_nodes(
            self.names,
            self.workdir,
            self.database,
            self.lab,
            self.hook,
            max_calls=4 * plan.calls_at_once + 20,
            stt=HEARING,
        )
        self.configs = configs
        try:
            with self.stack:
                for name in self.names:
                    self.start_node(name, self.previous)
                timeout = aiohttp.ClientTimeout(total=60)
                connector = aiohttp.TCPConnector(limit=4 * plan.calls_at_once + 20)
                async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
                    self.http = http
                    await self.drive()
                await asyncio.sleep(1.0)  # the nodes see the harness's connections closed
                r.fds_after = {n: fd_kinds(self.processes[n].pid) for n in self.live()}
                r.node_exits = {n: p.poll() for n, p in self.processes.items()}
        finally:
            await self.hook.stop()
            self.read_logs()
        return r

    async def drive(self) -> None:
        r, plan = self.result, self.plan
        for name in self.names:
            await wait_healthy(
                self.session, self.base(name), self.processes[name], self.workdir / f"{name}.log"
            )
        tree = None if self.previous is None else self.previous[0]
        self.key = await acme_api_key(self.database, tree)
        before = await lab_ids(self.session, self.lab)
        r.fds_before = {n: fd_kinds(self.processes[n].pid) for n in self.names}
        for variable, value in (
            ("LAB_SOAK_MIN", plan.min_call_s),
            ("LAB_SOAK_MAX", plan.max_call_s),
        ):
            params = {"variable": variable, "value": f"{value:.0f}"}
            status, answer = await self.ari("POST", "/asterisk/variable", params=params)
            assert status == 204, answer
        r.began = time.monotonic()
        self.wall_began = time.time()
        if plan.roll_at_s is None:
            self.calls_until = r.began + plan.minutes * 60
        async with asyncio.TaskGroup() as group:
            watchers = [
                group.create_task(self.watch_calls()),
                group.create_task(self.sample()),
            ]
            if plan.kill_node_at_min is not None:
                watchers.append(group.create_task(self.kill_later(plan.kill_node_at_min * 60)))
            if plan.roll_at_s is not None:
                group.create_task(self.roll())  # ends the calls' window once done
            campaign = group.create_task(self.campaign()) if plan.campaign_at_once else None
            slots = [group.create_task(self.slot(n)) for n in range(plan.calls_at_once)]
            await asyncio.gather(*slots)
            if campaign is not None:
                await campaign
            r.window_s = min(self.now(), self.calls_until - r.began)
            await self.judge(before)
            r.finished_s = self.now()
            for task in watchers:
                task.cancel()


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
