"""How many talking callers one node transcribes with offline Whisper before latency degrades,
before and after the node-wide recognition pool, and admission control at the bound.

N callers speak recorded sentences at once, each into a ``TurnEngine`` of its own: the real
listener (VAD, adaptive endpointing), the streaming recognizer (interims, speculative finals)
and faster-whisper on the packaged Whisper-base weights, built from the operator's ``[speech]``
settings exactly as a call's STT is (``calls/offline_speech.operator_stt``). The caller's
audio is fed as the media path feeds it: 8 kHz PCM decoded from µ-law, one 20 ms frame every
20 ms on one clock for all callers. Sentences of 3-8 s, synthesized once with Piper, each
followed by 1.5 s of silence and preceded by a pause of 0.5-2.5 s (callers out of step). The
LLM and TTS answer at once (``bench/turn_latency.py``'s stand-ins): only speech recognition
loads the CPU, the PBX is not needed.

Modes, step by step in one run (the same audio, the same order of callers):

* ``before``: ``[speech] recognition_pool = false``: each call's transcriptions in a thread of
  their own on one model worker (CTranslate2's default threads), finals and interims alike;
* ``after``: ``recognition_pool = true``: one ``WorkerPool`` per node sized to the cores, one
  model worker per pool worker, finals before interims.

Per step of N: the final transcript's latency after the end of speech (the endpointing
silence plus the final's wait: the turn's ``endpointing_ms + stt_final_ms``) p50/p95/max,
turns heard out of turns spoken, transcriptions run per turn (finals + interims + speculative
finals), the process's CPU (100 % = one core) and, for ``after``, the longest wait of a
transcription for a worker (the admission signal, sampled every 20 ms).

Then ``admission``: callers are offered one every ``--arrival`` seconds up to ``--offered``,
each asking the node's ``SpeechAdmission`` as a new call does (``[speech] admission_wait_ms``,
default 250); refused callers are counted, admitted ones talk until the end. Beside it the
same offered load without admission control (``after`` with every caller admitted), so the
admitted calls' latency is read against what they would have had.

    .venv/bin/python bench/offline_speech_load.py [--steps 1,4,8,12,16,24,32] [--seconds 20]
        [--offered 48] [--arrival 0.25] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from turn_latency import InstantLlm, InstantSink, InstantTts, machine

from voicedock.calls.offline_speech import operator_stt, recognition_threads
from voicedock.calls.speech_admission import SpeechAdmission
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import AssistantConfig, TtsConfig
from voicedock.media.codecs import ulaw_decode, ulaw_encode
from voicedock.pipeline.audio import resample_pcm16
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig, TurnEngine
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.recognition import NodeRecognition
from voicedock.pipeline.pools.worker_pool import Priority, WorkerPool
from voicedock.pipeline.providers.base import Stt
from voicedock.pipeline.providers.registry import create_tts
from voicedock.pipeline.providers.whisper.stt import WhisperStt

RATE = 8000
FRAME_BYTES = RATE * 20 // 1000 * 2  # 20 ms of 16-bit PCM
SENTENCES = (
    "I would like to book an appointment on Monday morning, if that is possible.",
    "Hello, I am calling about my order from last week, it has not arrived yet.",
    "Could you tell me what time you open tomorrow and when you close?",
    "I have a terrible toothache and I would like to see a dentist today.",
    "Is there a parking space near your office, or should I take the bus?",
    "I need to cancel my appointment on Thursday because I will be travelling.",
    "Can you send me the invoice for last month by email, please?",
    "My daughter needs a check up, do you have anything free next week?",
    "Please ask the doctor to call me back this afternoon after three.",
    "I forgot my password and I cannot log in to my account any more.",
    "How much does a cleaning cost if I do not have any insurance?",
    "Do you also offer appointments on Saturday mornings for working people?",
)
AFTER_SPEECH_S = 1.5  # silence after each sentence


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def phone_line(text: str) -> bytes:
    """``text`` spoken by Piper, as 8 kHz PCM after a µ-law phone line."""
    tts = create_tts(TtsConfig(provider="piper"))
    try:
        pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    finally:
        await tts.aclose()
    return ulaw_decode(ulaw_encode(resample_pcm16(pcm, tts.sample_rate, RATE))).tobytes()


def caller_audio(lines: list[bytes], seconds: float, rng: random.Random) -> tuple[bytes, int]:
    """One caller's stream of ``seconds``: pauses, sentences, silences; and its sentences."""
    out = bytearray()
    spoken = 0
    limit = int(seconds * RATE) * 2
    while True:
        line = lines[rng.randrange(len(lines))]
        gap = b"\x00\x00" * int(rng.uniform(0.5, 2.5) * RATE)
        tail = b"\x00\x00" * int(AFTER_SPEECH_S * RATE)
        if len(out) + len(gap) + len(line) + len(tail) > limit:
            break
        out += gap + line + tail
        spoken += 1
    out += b"\x00\x00" * ((limit - len(out)) // 2)
    return bytes(out), spoken


class CountingStt(WhisperStt):
    """The call's Whisper, counting the transcriptions it runs (finals and the rest)."""

    runs = 0

    def transcribe_blocking(self, pcm: bytes, sample_rate: int, prefix: str) -> str:
        CountingStt.runs += 1
        return super().transcribe_blocking(pcm, sample_rate, prefix)


def whisper(speech: SpeechSettings) -> CountingStt:
    return CountingStt(operator_stt("offline", speech))


@dataclasses.dataclass
class Caller:
    audio: bytes
    sentences: int
    conversation: TurnEngine
    start_frame: int = 0  # the clock's tick when it started talking
    admitted: bool = True


@dataclasses.dataclass
class Step:
    mode: str
    n: int
    turns: int = 0
    spoken: int = 0
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    transcriptions: int = 0
    cpu_pct: float = 0.0
    max_final_wait_ms: float | None = None
    pool_started: str = "–"  # after: transcriptions the pool started as final / ahead
    offered: int = 0
    refused: int = 0
    load: float = 0.0


def conversation(stt: Stt) -> TurnEngine:
    config = ConversationConfig(
        sample_rate=RATE,
        endpointing=EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None),
        stt_timeout_s=60.0,
    )
    return TurnEngine(
        stt=stt, llm=InstantLlm(), tts=InstantTts(), sink=InstantSink(), config=config
    )


async def drive(
    callers: list[Caller],
    frames: int,
    *,
    arrive: Callable[[int], None] | None = None,
    sample: Callable[[], None] | None = None,
) -> None:
    """Feed every caller one 20 ms frame per tick on one clock, for ``frames`` ticks."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for tick in range(frames):
        if arrive is not None:
            arrive(tick)
        for caller in callers:
            if not caller.admitted:
                continue
            at = (tick - caller.start_frame) * FRAME_BYTES
            if 0 <= at < len(caller.audio):
                caller.conversation.feed_audio(caller.audio[at : at + FRAME_BYTES])
        if sample is not None:
            sample()
        await asyncio.sleep(max(0.0, start + (tick + 1) * 0.02 - loop.time()))


async def settle(callers: list[Caller], within_s: float = 20.0) -> None:
    """Until every turn spoken got its answer (or ``within_s`` passed)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if all(len(c.conversation.latencies) >= c.sentences for c in callers if c.admitted):
            return
        await asyncio.sleep(0.1)


async def one_step(
    mode: str,
    n: int,
    lines: list[bytes],
    seconds: float,
    *,
    offered: int = 0,
    arrival_s: float = 1.0,
    admission_wait_ms: int = 0,
) -> Step:
    speech = SpeechSettings(recognition_pool=mode != "before", admission_wait_ms=admission_wait_ms)
    base = whisper(speech)
    await base.warm_up()
    recognition: NodeRecognition | None = None
    admission: SpeechAdmission | None = None
    if speech.recognition_pool:
        workers, _ = recognition_threads(speech)
        recognition = NodeRecognition(
            WorkerPool(workers, name="recognition"), admission_wait_s=admission_wait_ms / 1000
        )
        admission = SpeechAdmission(recognition, speech)
    rng = random.Random(n * 7919 + offered)
    count = offered or n
    callers: list[Caller] = []
    for i in range(count):
        audio, sentences = caller_audio(lines, seconds, rng)
        stt: Stt = base if recognition is None else recognition.speech_for(base)
        caller = Caller(audio, sentences, conversation(stt))
        if offered:
            caller.start_frame = round(i * arrival_s / 0.02)
            caller.admitted = False
        callers.append(caller)
    step = Step(mode, n, offered=offered)
    worst = [0.0]

    def arrive(tick: int) -> None:
        for caller in callers:
            if caller.start_frame == tick and not caller.admitted:
                refused = (
                    None if admission is None else admission.refusal(AssistantConfig(), "inbound")
                )
                if refused is None:
                    caller.admitted = True
                else:
                    step.refused += 1

    def sample() -> None:
        if recognition is not None:
            worst[0] = max(worst[0], recognition.wait_s())

    for caller in callers:
        await caller.conversation.__aenter__()
    CountingStt.runs = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    ticks = max(c.start_frame for c in callers) + round(seconds / 0.02)
    await drive(callers, ticks, arrive=arrive if offered else None, sample=sample)
    await settle(callers)
    step.cpu_pct = 100 * (time.process_time() - cpu0) / (time.monotonic() - wall0)
    step.transcriptions = CountingStt.runs
    for caller in callers:
        await caller.conversation.aclose()
        if not caller.admitted:
            continue
        step.spoken += caller.sentences
        step.turns += len(caller.conversation.latencies)
        step.latencies_ms += [
            t.endpointing_ms + t.stt_final_ms
            for t in caller.conversation.latencies
            if t.stt_final_ms is not None
        ]
    if recognition is not None:
        step.max_final_wait_ms = worst[0] * 1000
        started = recognition.pool.started
        step.pool_started = f"{started[Priority.DUE]} / {started[Priority.AHEAD]}"
        await recognition.aclose()
    step.load = os.getloadavg()[0]
    return step


def row(step: Step) -> str:
    lat = step.latencies_ms
    wait = "–" if step.max_final_wait_ms is None else f"{step.max_final_wait_ms:.0f}"
    per_turn = step.transcriptions / step.turns if step.turns else float("nan")
    return (
        f"| {step.mode} | {step.n} | {step.turns}/{step.spoken} | {pct(lat, 0.5):.0f} "
        f"| {pct(lat, 0.95):.0f} | {max(lat, default=float('nan')):.0f} | {per_turn:.1f} "
        f"| {step.pool_started} | {step.cpu_pct:.0f} | {wait} | {step.load:.2f} |"
    )


async def run(args: argparse.Namespace) -> tuple[list[Step], list[Step]]:
    lines = [await phone_line(text) for text in SENTENCES]
    steps: list[Step] = []
    for n in args.steps:
        for mode in ("before", "after"):
            step = await one_step(mode, n, lines, args.seconds)
            print(row(step), flush=True)
            steps.append(step)
    admission: list[Step] = []
    if args.offered:
        for mode, bound in (("after, no admission", 0), ("after, admission", args.bound_ms)):
            step = await one_step(
                "after",
                args.offered,
                lines,
                args.seconds,
                offered=args.offered,
                arrival_s=args.arrival,
                admission_wait_ms=bound,
            )
            step.mode = mode
            print(row(step), f"refused {step.refused}/{step.offered}", flush=True)
            admission.append(step)
    return steps, admission


def report(args: argparse.Namespace, steps: list[Step], admission: list[Step]) -> str:
    now = dt.datetime.now(dt.UTC)
    speech = SpeechSettings()
    workers, threads = recognition_threads(speech)
    head = (
        "| mode | callers | turns heard/spoken | final after end of speech p50 (ms) | p95 | max "
        "| transcriptions per turn | pool started: final / ahead | CPU (% of a core) "
        "| longest wait for a worker (ms) | load avg |"
    )
    sep = "|---|---|---|---|---|---|---|---|---|---|---|"
    lines = [
        f"# Offline speech at load — {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}; a shared 2-core VM (other work may run meanwhile: see the "
        "load average per row).",
        f"Command: `{' '.join(sys.argv)}`",
        f"Whisper-base int8 (packaged weights), short encoder context, streaming recognition "
        f"(interims every 1.5 s, speculative final after 100 ms of pause), adaptive "
        f"endpointing. `after`: {workers} recognition workers × {threads} thread(s); "
        f"`before`: one model worker, CTranslate2's default threads, a thread per "
        f"transcription. {args.seconds:.0f} s of audio per caller per step.",
        "",
        "## Per step of N (before / after, the same audio)",
        "",
        head,
        sep,
        *(row(s) for s in steps),
    ]
    if admission:
        lines += [
            "",
            f"## Admission control: {args.offered} callers offered, one every "
            f"{args.arrival:g} s, bound {args.bound_ms} ms",
            "",
            head.replace("| callers |", "| callers admitted/offered |"),
            sep,
        ]
        for s in admission:
            lines.append(
                row(dataclasses.replace(s, n=0)).replace(
                    "| 0 |", f"| {s.offered - s.refused}/{s.offered} |", 1
                )
            )
    lines += ["", f"Load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", default="1,4,8,12,16,24,32")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--offered", type=int, default=48)
    parser.add_argument("--arrival", type=float, default=0.25)
    parser.add_argument("--bound-ms", type=int, default=SpeechSettings().admission_wait_ms)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    args.steps = [int(x) for x in args.steps.split(",") if x]
    steps, admission = asyncio.run(run(args))
    text = report(args, steps, admission)
    print(text)
    if args.write or args.out:
        now = dt.datetime.now(dt.UTC)
        out = (
            Path(args.out)
            if args.out
            else (Path(__file__).parent / "results" / f"offline_speech_load-{now:%Y-%m-%d}.md")
        )
        out.write_text(text)
        print(f"written to {out}")


if __name__ == "__main__":
    main()
