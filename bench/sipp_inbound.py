"""Inbound calls placed by SIPp through the real PBX: Asterisk's own ceiling, and voicedock's.

A private lab Asterisk (``voicedock_lab``, loopback only) and one voicedock node
(``tests/nodes/node_process``: ``voicedock serve`` on SQLite with the tests' speech stand-ins —
an STT that hears the caller's sentence in every utterance the VAD ends, the echo LLM, a
440 Hz tone TTS — so a call costs its SIP, RTP, media leg, VAD, endpointing, conversation and
store writes, no speech model). SIPp (Debian's ``sip-tester``) places N concurrent inbound
calls over loopback UDP with ``bench/sipp/uac_pcap.xml``: INVITE (µ-law), held ``--hold``
seconds while the caller's speech plays as RTP from a pcap, then BYE. The pcap is written
here, at run time, from the lab's Piper sentence ("I would like to book an appointment on
Monday."): a sentence every 7 s with silence between, 20 ms PCMU packets.

Two targets per step of N, in one run, one after the other:

* ``pbx``: the PBX alone. The calls go to an extension that answers and ``Echo()``es (what
  it hears goes back: media both ways), Asterisk's own cost per call on this machine;
* ``voicedock``: the same calls to the number routed to the node's assistant: the
  production dialplan (``voicedock-inbound``) hands each to the node over ARI, which answers,
  bridges a chan_websocket media leg, greets, hears each sentence and answers it.

SIPp reaches the lab through a bench-only endpoint (``bench-sipp``, identified by SIPp's
port on the lab's service transport, no auth) and a bench-only context added to the private
instance's config at start (``SippLab.configure``); the shipped configuration is unchanged.

Per step: calls attempted / answered / failed (SIPp's statistics, ``-trace_stat``), SIP
response time INVITE → 200 OK (``-trace_rtt``) p50/p95/max, and over the window where the
calls were all up (SIPp's ``CurrentCall`` at its peak): Asterisk's CPU, the node's CPU and
RSS, SIPp's own CPU, the whole machine's busy share (/proc/stat). For ``voicedock`` also the
calls stored with status ``ended``, those with a user turn in their transcript, the user turns
heard against the sentences played (fewer: turns lost; more: a sentence split or heard twice)
and the replies per user turn.

A step holds when every call was answered, none failed, the setup p95 is <= 1 s and the
machine's CPU did not saturate (busy < 95 % of all cores); for voicedock also when every call
ended with every sentence heard once and answered. A target's ceiling is the largest N held
before its first step that did not; a target runs no higher step after that one.

Usage: ``.venv/bin/python bench/sipp_inbound.py [--steps 10,25,50,100]
[--pbx-steps 10,25,50,100,200,400] [--hold 30] [--rate 20] [--budget 13] [--out FILE]
[--keep DIR]``; needs root (SIPp
plays pcaps through a raw socket; the lab runs in a chroot). Writes
``bench/results/sipp_inbound-<date>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import datetime as dt
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from greeting_latency import under_test  # bench/, beside this script
from originate import machine, pct
from two_nodes import cpu_seconds

from deploy.test_compose_as_shipped import TERMINAL, wait_healthy
from fakes.world import ACME_NUMBERS
from nodes.node_process import HEARING, acme_api_key, node_process
from nodes.test_nodes_lab import ari_auth, node_config
from soak.harness import count_log, rss_mb
from voicedock.media.codecs import ulaw_encode
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings, free_port_range, free_ports
from voicedock_lab.utterances import APPOINTMENT, cached_utterance, read_wav

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = Path(__file__).parent / "sipp" / "uac_pcap.xml"
SIPP = "sipp"
DID = ACME_NUMBERS[0]  # the node's number, its assistant "Support"
ECHO = "echo"  # the bench context's extension that answers and echoes
RATE = 8000
FRAME_SAMPLES = 160  # 20 ms
LEAD_S = 1.5  # silence before the first sentence (the greeting plays meanwhile)
EVERY_S = 7.0  # a sentence every 7 s
QUIET_AFTER_S = 2.0  # at least this much silence after the last sentence
SETUP_P95_MS = 1000.0
SATURATED = 0.95  # of all cores

# The bench's own way into the private lab: SIPp's port on the service transport is this
# endpoint (no auth, as a carrier trunk identified by address), its context the bench's.
BENCH_PJSIP = """
; ---- bench/sipp_inbound.py only (this private instance) -------------------------------------
[bench-sipp](lab-endpoint)
transport = lab-service
context = bench-sipp

[bench-sipp]
type = identify
endpoint = bench-sipp
match = 127.0.0.1:{port}
"""
BENCH_DIALPLAN = """
; ---- bench/sipp_inbound.py only (this private instance) -------------------------------------
[bench-sipp]
exten => echo,1,Answer()
 same => n,Echo()
 same => n,Hangup()
exten => _+X.,1,Goto(voicedock-inbound,${EXTEN},1)
"""


# -- the caller's speech as a pcap ---------------------------------------------------------------


def caller_audio(sentence: bytes, seconds: float) -> tuple[bytes, int]:
    """16-bit PCM at 8 kHz: ``LEAD_S`` of silence, then the sentence every ``EVERY_S`` seconds
    while it is followed by ``QUIET_AFTER_S`` of silence within ``seconds``; and how many
    sentences that is."""
    total = int(seconds * RATE) * 2
    pcm = bytearray(total)
    starts, at = [], LEAD_S
    while (at * RATE) * 2 + len(sentence) + QUIET_AFTER_S * RATE * 2 <= total:
        starts.append(at)
        at += EVERY_S
    for start in starts:
        offset = int(start * RATE) * 2
        pcm[offset : offset + len(sentence)] = sentence
    return bytes(pcm), len(starts)


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return int(~total & 0xFFFF)


def rtp_pcap(pcm: bytes, *, sport: int = 6000, dport: int = 6010, ssrc: int = 0x5EED) -> bytes:
    """A pcap file (Ethernet, IPv4, UDP, RTP) of ``pcm`` as PCMU, one packet per 20 ms.

    SIPp's ``play_pcap_audio`` keeps each packet's UDP payload (the RTP header and µ-law)
    and its timing, and rewrites the addresses and ports to the call's.
    """
    ulaw = ulaw_encode(pcm)
    if len(ulaw) % FRAME_SAMPLES:
        ulaw += b"\xff" * (FRAME_SAMPLES - len(ulaw) % FRAME_SAMPLES)  # µ-law silence
    src, dst = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # LINKTYPE_ETHERNET
    for index in range(len(ulaw) // FRAME_SAMPLES):
        payload = ulaw[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES]
        marker = 0x80 if index == 0 else 0x00
        rtp = struct.pack("!BBHII", 0x80, marker | 0, index & 0xFFFF, index * FRAME_SAMPLES, ssrc)
        udp = struct.pack("!HHHH", sport, dport, 8 + len(rtp) + len(payload), 0)
        length = 20 + len(udp) + len(rtp) + len(payload)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, index & 0xFFFF, 0, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp + rtp + payload
        micros = index * 20_000
        out.append(
            struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame))
        )
        out.append(frame)
    return b"".join(out)


# -- the lab, with the bench's way in ------------------------------------------------------------


class SippLab(LabAsterisk):
    """The lab Asterisk plus the ``bench-sipp`` endpoint (SIPp's port) and context."""

    def __init__(self, settings: LabSettings, sipp_port: int) -> None:
        super().__init__(settings, project_root=ROOT, verbose=False)
        self.sipp_port = sipp_port

    def configure(self) -> None:
        super().configure()
        etc = self.settings.instance_dir / "etc"
        with (etc / "pjsip.conf").open("a") as pjsip:
            pjsip.write(BENCH_PJSIP.format(port=self.sipp_port))
        with (etc / "extensions.conf").open("a") as dialplan:
            dialplan.write(BENCH_DIALPLAN)


@contextlib.contextmanager
def sipp_lab(rtp_ports: int, sipp_port: int) -> Iterator[SippLab]:
    settings = LabSettings(instance=f"sipp-{os.getpid()}").with_free_ports()
    base = free_port_range(rtp_ports)
    settings = dataclasses.replace(settings, rtp_start=base, rtp_end=base + rtp_ports - 1)
    lab = SippLab(settings, sipp_port)
    try:
        lab.up(timeout=60)
        yield lab
    finally:
        lab.down()
        shutil.rmtree(settings.instance_dir, ignore_errors=True)


# -- measuring -----------------------------------------------------------------------------------


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far (/proc/stat)."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))


@dataclass
class Sample:
    at: float  # time.time()
    cpu: dict[str, float]  # process -> CPU seconds so far
    rss: dict[str, float]  # process -> MB
    busy: tuple[float, float]


async def sample(pids: dict[str, int], into: list[Sample], every: float = 1.0) -> None:
    while True:
        cpu, rss = {}, {}
        for name, pid in pids.items():
            with contextlib.suppress(OSError, IndexError, ValueError):
                cpu[name] = cpu_seconds(pid)
                rss[name] = rss_mb(pid)
        into.append(Sample(time.time(), cpu, rss, machine_busy()))
        await asyncio.sleep(every)


@dataclass
class Step:
    target: str  # pbx or voicedock
    n: int
    hold_s: float = 0.0
    sentences: int = 0
    attempted: int = 0
    answered: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # SIPp's failure counters
    retransmissions: int = 0  # SIP requests SIPp sent again (no answer within 500 ms)
    setup_ms: list[float] = field(default_factory=list)
    peak_up: int = 0
    window_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # process -> % of one core
    rss_max: dict[str, float] = field(default_factory=dict)
    busy: float = 0.0  # the machine, share of all cores over the window
    load: float = 0.0
    sipp_exit: int | None = None
    left_at_pbx: int = 0
    # voicedock only
    stored: int = 0
    ended: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    with_user_turn: int = 0
    user_turns: int = 0
    turns_lost: int = 0  # sentences played but not in the transcript
    turns_extra: int = 0  # user turns beyond the sentences played
    calls_short: int = 0
    calls_extra: int = 0
    replies: int = 0  # assistant messages after the greeting
    error: str = ""

    @property
    def setup_p95(self) -> float:
        return pct(self.setup_ms, 0.95) if self.setup_ms else float("inf")

    def problems(self) -> list[str]:
        """Why this step is past the ceiling (empty: it holds)."""
        found = []
        if self.error:
            found.append(self.error)
        if self.answered < self.n or self.failed:
            found.append(f"{self.n - self.answered} not answered, {self.failed} failed")
        if self.setup_p95 > SETUP_P95_MS:
            found.append(f"setup p95 {self.setup_p95:.0f} ms > {SETUP_P95_MS:.0f} ms")
        if self.busy >= SATURATED:
            found.append(f"CPU saturated ({self.busy:.0%} of all cores)")
        if self.target == "voicedock":
            if self.ended < self.n:
                found.append(f"{self.n - self.ended} calls not stored ended")
            if self.turns_lost or self.turns_extra:
                found.append(f"turns lost {self.turns_lost}, extra {self.turns_extra}")
            if self.replies < self.user_turns:
                found.append(f"{self.user_turns - self.replies} turns not answered")
        return found


def _epoch(cell: str) -> float:
    """SIPp's time cell: ``date<TAB>time<TAB>epoch``."""
    return float(cell.split()[-1])


def read_stats(path: Path, step: Step) -> list[tuple[float, int]]:
    """SIPp's statistics CSV: the final counts into ``step``; (time, calls up) per period."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    if not rows:
        return []
    last = rows[-1]
    step.attempted = int(last["OutgoingCall(C)"])
    step.answered = int(last["SuccessfulCall(C)"])
    step.failed = int(last["FailedCall(C)"])
    for key, value in last.items():
        counted = key.startswith("Failed") and key.endswith("(C)") and key != "FailedCall(C)"
        if counted and int(value or 0):
            step.failures[key[len("Failed") : -3]] = int(value)
    step.retransmissions = int(last.get("Retransmissions(C)") or 0)
    return [(_epoch(r["CurrentTime"]), int(r["CurrentCall"])) for r in rows]


def read_rtt(folder: Path) -> list[float]:
    found: list[float] = []
    for path in folder.glob("*_rtt.csv"):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle, delimiter=";"):
                if row.get("rtd_no", "").strip() in ("setup", "1"):
                    found.append(float(row["response_time_ms"]))
    return found


def window_usage(step: Step, samples: list[Sample], up: list[tuple[float, int]]) -> None:
    """CPU over the window where the calls up were at their peak (>= 95 % of it)."""
    if not up or not samples:
        return
    step.peak_up = max(n for _, n in up)
    at_peak = [t for t, n in up if n >= 0.95 * step.peak_up and n > 0]
    if not at_peak:
        return
    begin, end = min(at_peak), max(at_peak)
    inside = [s for s in samples if begin <= s.at <= end]
    if len(inside) < 2:  # a short window: the samples around it
        inside = [s for s in samples if begin - 1.0 <= s.at <= end + 1.0]
    if len(inside) < 2:
        return
    first, last = inside[0], inside[-1]
    wall = last.at - first.at
    step.window_s = wall
    for name in last.cpu:
        if name in first.cpu and wall > 0:
            step.cpu[name] = 100 * (last.cpu[name] - first.cpu[name]) / wall
    for name in last.rss:
        step.rss_max[name] = max(s.rss.get(name, 0.0) for s in inside)
    busy = last.busy[0] - first.busy[0]
    total = last.busy[1] - first.busy[1]
    step.busy = busy / total if total else 0.0


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Bench:
    lab: SippLab
    workdir: Path
    hold_s: float
    rate: float
    sentence: bytes  # the caller's sentence, 16-bit PCM at 8 kHz
    media_port: int
    http: aiohttp.ClientSession
    node_base: str = ""
    node_pid: int = 0
    key: str = ""
    asterisk_pid: int = 0

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def lab_channels(self) -> int:
        url = f"{self.lab.ari_url}/channels"
        async with self.http.get(url, headers=ari_auth(self.lab)) as resp:
            return len(await resp.json())

    async def call_ids(self) -> set[str]:
        found: set[str] = set()
        cursor = ""
        while True:
            url = f"{self.node_base}/calls?limit=1000{cursor}"
            async with self.http.get(url, headers=self.headers()) as resp:
                assert resp.status == 200, await resp.text()
                page = await resp.json()
            found |= {c["id"] for c in page["calls"]}
            if not page.get("next_cursor"):
                return found
            cursor = f"&cursor={page['next_cursor']}"

    async def call(self, call_id: str) -> dict[str, Any]:
        async with self.http.get(f"{self.node_base}/calls/{call_id}", headers=self.headers()) as r:
            assert r.status == 200, await r.text()
            found: dict[str, Any] = await r.json()
            return found

    async def sipp(self, step: Step, service: str, folder: Path) -> None:
        ramp_s = step.n / self.rate
        args = [
            SIPP,
            f"127.0.0.1:{self.lab.settings.sip_port}",
            "-sf",
            str(folder / SCENARIO.name),
            "-s",
            service,
            "-i",
            "127.0.0.1",
            "-p",
            str(self.lab.sipp_port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(self.media_port),
            "-m",
            str(step.n),
            "-l",
            str(step.n),
            "-r",
            f"{self.rate:g}",
            "-d",
            str(int(step.hold_s * 1000)),
            "-recv_timeout",
            "30000",
            "-timeout",
            f"{int(ramp_s + step.hold_s + 120)}s",
            "-trace_stat",
            "-stf",
            "stats.csv",
            "-fd",
            "1",
            "-trace_rtt",
            "-rtt_freq",
            "1",
            "-trace_err",
            "-nostdin",
        ]
        with (folder / "sipp.out").open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *args, cwd=folder, stdout=out, stderr=subprocess.STDOUT
            )
        samples: list[Sample] = []
        pids = {"asterisk": self.asterisk_pid, "sipp": process.pid}
        if self.node_pid:
            pids["node"] = self.node_pid
        sampler = asyncio.create_task(sample(pids, samples))
        try:
            step.sipp_exit = await process.wait()
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            if process.returncode is None:
                process.kill()
                await process.wait()
        stats = folder / "stats.csv"
        up = read_stats(stats, step) if stats.exists() else []
        step.setup_ms = read_rtt(folder)
        window_usage(step, samples, up)

    async def step(self, target: str, n: int) -> Step:
        # Held long enough for every call to be up together for 15 s at least.
        hold_s = max(self.hold_s, n / self.rate + 15)
        pcm, sentences = caller_audio(self.sentence, hold_s - 0.5)
        step = Step(target, n, hold_s, sentences, load=os.getloadavg()[0])
        folder = self.workdir / f"{target}-{n}"
        folder.mkdir()
        shutil.copy(SCENARIO, folder / SCENARIO.name)
        (folder / "caller.pcap").write_bytes(rtp_pcap(pcm))
        before = await self.call_ids() if target == "voicedock" else set()
        await self.sipp(step, DID if target == "voicedock" else ECHO, folder)
        if target == "voicedock":
            await self.judge(step, before)

        async def clear() -> bool:
            return await self.lab_channels() == 0

        await until(clear, 30)
        step.left_at_pbx = await self.lab_channels()
        return step

    async def judge(self, step: Step, before: set[str]) -> None:
        mine: set[str] = set()

        async def all_over() -> bool:
            nonlocal mine
            mine = await self.call_ids() - before
            calls = [await self.call(c) for c in mine]
            return all(c["status"] in TERMINAL for c in calls)

        await until(all_over, 60, every=1.0)
        gate = asyncio.Semaphore(8)

        async def one(call_id: str) -> dict[str, Any]:
            async with gate:
                return await self.call(call_id)

        calls = await asyncio.gather(*(one(c) for c in sorted(mine)))
        step.stored = len(calls)
        for call in calls:
            step.statuses[f"{call['status']} {call.get('end_reason')}"] += 1
            step.ended += call["status"] == "ended"
            roles = [m["role"] for m in call.get("messages") or []]
            users = roles.count("user")
            step.user_turns += users
            step.with_user_turn += users > 0
            step.replies += max(0, roles.count("assistant") - 1)  # the first is the greeting
            step.turns_lost += max(0, step.sentences - users)
            step.turns_extra += max(0, users - step.sentences)
            step.calls_short += users < step.sentences
            step.calls_extra += users > step.sentences


async def until(check: Any, within: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            if await check():
                return True
        await asyncio.sleep(every)
    return False


async def run(
    lab: SippLab,
    workdir: Path,
    steps: list[int],
    pbx_steps: list[int],
    hold_s: float,
    rate: float,
    media_port: int,
    budget_s: float,
) -> tuple[list[Step], Counter[str], int]:
    sentence, sentence_rate = read_wav(cached_utterance(APPOINTMENT, lab.settings.cache_dir))
    assert sentence_rate == RATE
    database = f"sqlite:///{workdir / 'node.db'}"
    port = free_ports(1)[0]
    config = node_config(
        workdir / "node.toml",
        node_id="a",
        database=database,
        port=port,
        lab=lab,
        max_calls=2 * max(steps) + 20,
        stt=HEARING,
    )
    log = workdir / "node.log"
    done: list[Step] = []
    await asyncio.to_thread(lab.cli, "core set verbose 0")
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        bench = Bench(lab, workdir, hold_s, rate, sentence, media_port, http)
        bench.asterisk_pid = (await asyncio.to_thread(lab.status)).pid or 0
        with node_process(config, log) as process:
            bench.node_base, bench.node_pid = f"http://127.0.0.1:{port}", process.pid
            await wait_healthy(http, bench.node_base, process, log)  # type: ignore[arg-type]
            bench.key = await acme_api_key(database)
            stopped: set[str] = set()
            deadline = time.monotonic() + budget_s
            for n in sorted(set(steps) | set(pbx_steps)):
                for target, wanted in (("pbx", pbx_steps), ("voicedock", steps)):
                    if n not in wanted or target in stopped:
                        continue
                    needs = n / rate + max(hold_s, n / rate + 15) + 20
                    if time.monotonic() + needs > deadline:
                        done.append(Step(target, n, error="not run: past the time budget"))
                        stopped.add(target)
                        continue
                    print(f"{target}: {n} calls ...", flush=True)
                    try:
                        step = await bench.step(target, n)
                    except Exception as exc:  # the step failed: the report says why
                        step = Step(target, n, error=f"{type(exc).__name__}: {exc}"[:300])
                    done.append(step)
                    print(f"{target}: {n} calls: {step.problems() or 'held'}", flush=True)
                    if step.problems():
                        stopped.add(target)
                    await asyncio.sleep(2)
    text = log.read_text(errors="replace") if log.exists() else ""
    kinds, tracebacks = count_log(text)
    return done, kinds, tracebacks


# -- the report ----------------------------------------------------------------------------------


def ceiling(done: list[Step], target: str) -> str:
    """The largest N held before the target's first step that did not hold."""
    held = None
    why = "every step held; not reached"
    for step in (s for s in done if s.target == target):
        if step.error.startswith("not run"):
            why = f"every step run held; {step.n} and above not run: the time budget"
            break
        if step.problems():
            first = f"first past it: {step.n} ({'; '.join(step.problems())})"
            return f"{held} calls ({first})" if held else f"below {step.n} calls ({first})"
        held = step.n
    return f">= {held} calls ({why})" if held else "not measured"


def ms(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{pct(values, 0.5):.0f} / {pct(values, 0.95):.0f} / {max(values):.0f}"


def report(
    done: list[Step],
    kinds: Counter[str],
    tracebacks: int,
    command: str,
    started: str,
    hold_s: float,
    rate: float,
    pbx_kinds: Counter[str],
) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cores = os.cpu_count() or 1
    lines = [
        f"# Inbound calls by SIPp through the lab Asterisk: the PBX alone and voicedock, {now}",
        "",
        f"Machine: {machine()}, `nproc` = {os.cpu_count()} — a shared 2-core VM (other work "
        "may run meanwhile: read the load average per step). SIPp, Asterisk and the node share "
        "the same cores.",
        f"Started {started}; voicedock under test: {under_test()}; {sipp_version()}",
        "",
        f"Command: `{command}`",
        "",
        f"Each step: SIPp (`bench/sipp/uac_pcap.xml`) places N calls at {rate:g} calls/s over "
        f"loopback UDP, each held {hold_s:g} s (longer for large N: every call up together for "
        "15 s at least) while the caller's speech plays as PCMU RTP from a pcap (the Piper "
        f'sentence "{APPOINTMENT.text}" after {LEAD_S:g} s, then one every {EVERY_S:g} s '
        f"while {QUIET_AFTER_S:g} s of silence follow it before the BYE), then BYE. "
        "**pbx**: to an extension that answers and `Echo()`es; "
        f"**voicedock**: to {DID}, the production dialplan hands it to the node over ARI (SQLite, "
        "speech stand-ins: an STT hearing the sentence in each utterance the VAD ends, the echo "
        "LLM, a tone TTS). CPU is % of one core over the window where the calls up were at "
        "their peak (the three: Asterisk + node + SIPp as a share of all cores); machine busy is "
        "the share of all cores used by anything (/proc/stat). Setup: SIPp's "
        "INVITE → 200 OK. A step holds with every call answered, none failed, setup p95 <= "
        f"{SETUP_P95_MS:.0f} ms, machine busy < {SATURATED:.0%} (and for voicedock every call "
        "ended with each sentence heard once and answered).",
        "",
        f"**Ceiling, the PBX alone: {ceiling(done, 'pbx')}.**",
        "",
        f"**Ceiling, through voicedock: {ceiling(done, 'voicedock')}.**",
        "",
        "| N | target | hold (s) | attempted / answered / failed | setup p50 / p95 / max (ms) "
        "| retransmissions | peak up | window (s) | Asterisk CPU % | Asterisk RSS (MB) "
        "| node CPU % | node RSS (MB) | SIPp CPU % | the three, of all cores | machine busy "
        "| load | holds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in done:
        if s.error and not s.attempted:
            lines.append(f"| {s.n} | {s.target} | failed: {s.error} |||||||||||||||")
            continue
        node_cpu = f"{s.cpu['node']:.0f}" if "node" in s.cpu else "—"
        node_rss = f"{s.rss_max['node']:.0f}" if "node" in s.rss_max else "—"
        lines.append(
            f"| {s.n} | {s.target} | {s.hold_s:g} | {s.attempted} / {s.answered} / {s.failed} "
            f"| {ms(s.setup_ms)} | {s.retransmissions} | {s.peak_up} | {s.window_s:.0f} "
            f"| {s.cpu.get('asterisk', 0):.0f} | {s.rss_max.get('asterisk', 0):.0f} "
            f"| {node_cpu} | {node_rss} "
            f"| {s.cpu.get('sipp', 0):.0f} | {sum(s.cpu.values()) / cores:.0f}% "
            f"| {s.busy:.0%} | {s.load:.2f} "
            f"| {'yes' if not s.problems() else 'no: ' + '; '.join(s.problems())} |"
        )
    lines += [
        "",
        "Through voicedock, what the node stored (`GET /calls/{id}`) against the sentences "
        "SIPp played:",
        "",
        "| N | sentences per call | calls stored | status ended | with a user turn "
        "| user turns heard / played "
        "| calls with turns lost / with extra turns | replies / user turns | end reasons |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in done:
        if s.target != "voicedock" or (s.error and not s.attempted):
            continue
        lines.append(
            f"| {s.n} | {s.sentences} | {s.stored} | {s.ended} | {s.with_user_turn} "
            f"| {s.user_turns} / {s.sentences * s.n} | {s.calls_short} / {s.calls_extra} "
            f"| {s.replies} / {s.user_turns} | {dict(s.statuses)} |"
        )
    lines += ["", "SIPp's failures, channels left at the PBX after each step:", ""]
    for s in done:
        lines.append(
            f"- {s.target} {s.n}: SIPp exit {s.sipp_exit}, failures {dict(s.failures) or 'none'}, "
            f"channels left {s.left_at_pbx}"
        )
    lines += ["", f"The node's log: {tracebacks} tracebacks; warnings and errors by kind:", ""]
    lines += [f"- {count} × `{kind}`" for kind, count in kinds.most_common(10)] or ["- none"]
    lines += ["", "Asterisk's log, warnings and errors by kind:", ""]
    lines += [f"- {count} × `{kind}`" for kind, count in pbx_kinds.most_common(10)] or ["- none"]
    lines += ["", f"Load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", ""]
    return "\n".join(lines)


def asterisk_log_kinds(text: str) -> Counter[str]:
    """Asterisk's WARNING / ERROR lines by kind (source file, function, message, digits
    masked)."""
    kinds: Counter[str] = Counter()
    pattern = re.compile(r"(WARNING|ERROR)\[\d+\](?:\[[^\]]*\])?: (\S+?):\d+ (\S+): (.*)")
    for line in text.splitlines():
        found = pattern.search(line)
        if found:
            level, source, function, message = found.groups()
            message = re.sub(r"\d+", "N", message)[:120]
            kinds[f"{level} {source} {function} {message}"] += 1
    return kinds


def sipp_version() -> str:
    done = subprocess.run([SIPP, "-v"], capture_output=True, text=True, timeout=10, check=False)
    found = next((line.strip() for line in done.stdout.splitlines() if "SIPp" in line), "SIPp")
    return found.rstrip(".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", default="10,25,50,100", help="N for both targets")
    parser.add_argument("--pbx-steps", default="10,25,50,100,200,400", help="N, the PBX alone")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds each call is held")
    parser.add_argument("--rate", type=float, default=20.0, help="calls placed per second")
    parser.add_argument(
        "--budget", type=float, default=13.0, help="minutes: no step starts that would end later"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="copy SIPp's files and the log")
    args = parser.parse_args()
    if shutil.which(SIPP) is None:
        sys.exit("sipp not found: apt-get install sip-tester")
    steps = [int(s) for s in args.steps.split(",") if s]
    pbx_steps = [int(s) for s in args.pbx_steps.split(",") if s]
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    top = max(steps + pbx_steps)
    sipp_port = free_ports(1)[0]
    media_port = free_port_range(4, half=1)
    # Each call holds one RTP stream at the lab (RTP and RTCP ports), the media leg none.
    with sipp_lab(4 * top + 200, sipp_port) as lab, tempfile.TemporaryDirectory() as workdir:
        done, kinds, tracebacks = asyncio.run(
            run(
                lab,
                Path(workdir),
                steps,
                pbx_steps,
                args.hold,
                args.rate,
                media_port,
                args.budget * 60,
            )
        )
        pbx_kinds = asterisk_log_kinds(lab.log_path.read_text(errors="replace"))
        if args.keep is not None:
            shutil.copytree(workdir, args.keep, dirs_exist_ok=True)
            shutil.copy(lab.log_path, args.keep / "asterisk.log")
    command = (
        f".venv/bin/python bench/sipp_inbound.py "
        f"--steps {args.steps} --pbx-steps {args.pbx_steps} --hold {args.hold:g} "
        f"--rate {args.rate:g} --budget {args.budget:g}"
    )
    text = report(done, kinds, tracebacks, command, started, args.hold, args.rate, pbx_kinds)
    print(text)
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    out = args.out or Path(__file__).parent / "results" / f"sipp_inbound-{day}.md"
    out.write_text(text)


if __name__ == "__main__":
    main()
