"""Turn-taking: does the assistant start while the caller is still mid-sentence, and how soon
does it answer a finished one? Every end-of-turn mode on the same corpus, in one run; then the
VADs (webrtcvad, Silero) on the corpus with telephone noise mixed in.

The corpus (``bench/turn_corpus.py``): finished sentences and sentences broken by pauses of
300-1,500 ms, fillers and a trailing "and", by eight speakers (Piper at three speaking rates,
espeak-ng in English and German), 8 kHz through µ-law, synthesized here into a cache. Each
item's label is where the turn really ends.

**Turns.** Each item goes, frame by frame (20 ms), through what a call's turn engine runs
(``TurnEngine.feed_audio``): the call's ``Listener`` (VAD, echo gate, endpointing) from its
``ConversationConfig``, and ``Hearing`` (the caller's turns transcribed while spoken by
faster-whisper on the packaged Whisper-base weights, the transcript of each pause hinting
whether the turn reads finished). Time is the audio's: a transcription runs for real (its CPU
measured) and its result arrives as many milliseconds of audio later as it took, so the run
is as fast as the CPU allows and a slow machine shows as late hints, as on a call. Per mode:

* early cut-off: an end of turn decided before the caller's real end (the assistant would
  start speaking mid-sentence), per item;
* answer start: from the caller's real end to when the reply could start (the decision, plus
  waiting for the final transcript if it was not ready), over the items not cut off;
* CPU per decision: the work done at each pause to decide (the speculative transcript in
  ``silence`` mode, plus the turn model in ``model`` mode), per pause;
* voice-to-voice: answer start plus the offline reply's first audio (the rule-based policy's
  first words, Piper's first sentence), both measured here.

**Replayed.** The same items as call recordings with a quiet assistant through the evaluator
of ``voicedock eval turns`` (``voicedock.pipeline.hearing.turn_replay``): every mode and swept
setting, no transcripts, early cut-offs counted as on an operator's calls (the caller went on
within 1 s of the decision); ``--replay-only`` runs this section alone.

**VAD.** Each item with noise mixed in at known SNRs (speech power over the speech spans
against the noise's power), made here: *babble*, six of the corpus's speakers talking at
once (Piper and espeak-ng voices, other sentences); *street*, pink noise whose level swells
and falls (passing traffic) with a 2-5 s period; *car*, brown noise low-passed (an engine's
rumble) with a faint 100 Hz hum. Per VAD and noise: frame accuracy against the labels
(speech = inside a span), the start-of-speech delay (first speech frame of a turn after its
start), the end-of-speech delay (from the turn's end to its last speech frame), and the CPU
per second of audio.

    .venv/bin/python bench/turn_taking.py [--per-voice 12] [--modes silence,model]
        [--snr 20,10,5] [--replay-only] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import turn_corpus as corpus  # noqa: E402
from report import publish  # noqa: E402

from voicedock.aio import Supervisor  # noqa: E402
from voicedock.media.codecs import ulaw_decode, ulaw_encode  # noqa: E402
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig  # noqa: E402
from voicedock.pipeline.dialogue.hearing import Hearing  # noqa: E402
from voicedock.pipeline.frames import UserSpeechStarted  # noqa: E402
from voicedock.pipeline.hearing import turn_replay  # noqa: E402
from voicedock.pipeline.hearing.endpointing import Endpointer, EndpointingConfig  # noqa: E402
from voicedock.pipeline.hearing.listener import Listener, UserUtterance  # noqa: E402
from voicedock.pipeline.hearing.vad import VadConfig, VoiceActivityDetector  # noqa: E402

FRAME_MS = 20
FRAME_BYTES = corpus.RATE * FRAME_MS // 1000 * 2
NOISES = ("babble", "street", "car")


# ── metrics (pure; tests/bench/test_turn_taking.py) ─────────────────────────────────────────
def early_cut_off(decisions_ms: Sequence[int], end_ms: int, slack_ms: int = 0) -> bool:
    """An end of turn was decided before the caller's real end (``slack_ms`` forgives a
    decision within the last syllable's decay)."""
    return any(d < end_ms - slack_ms for d in decisions_ms)


def answer_start(decisions_ms: Sequence[int], end_ms: int, ready_ms: int | None) -> int | None:
    """From the caller's real end to when the reply can start: the first decision at or
    after the end, or when its final transcript was ready if later; None without one."""
    after = [d for d in decisions_ms if d >= end_ms]
    if not after:
        return None
    return max(after[0], ready_ms if ready_ms is not None else after[0]) - end_ms


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 1]); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass(frozen=True, slots=True)
class FrameScore:
    frames: int
    correct: int
    speech_frames: int  # labelled speech
    missed: int  # labelled speech the VAD called silence
    false_alarms: int  # labelled silence the VAD called speech
    onset_ms: int | None  # first speech frame at or after the first span's start, after it
    offset_ms: int | None  # last speech frame's end (before the tail) minus the turn's end

    @property
    def accuracy(self) -> float:
        return self.correct / self.frames if self.frames else float("nan")


def score_frames(
    decisions: Sequence[bool], spans: Sequence[tuple[int, int]], frame_ms: int = FRAME_MS
) -> FrameScore:
    """VAD decisions against the labels: a frame is speech when its middle lies in a span."""
    truth = [
        any(a <= i * frame_ms + frame_ms // 2 < b for a, b in spans) for i in range(len(decisions))
    ]
    correct = sum(d == t for d, t in zip(decisions, truth, strict=True))
    missed = sum(t and not d for d, t in zip(decisions, truth, strict=True))
    false_alarms = sum(d and not t for d, t in zip(decisions, truth, strict=True))
    first, end = spans[0][0], spans[-1][1]
    onset = next(
        (
            i * frame_ms - first
            for i, d in enumerate(decisions)
            if d and i * frame_ms + frame_ms > first
        ),
        None,
    )
    window = [i for i, d in enumerate(decisions) if d and first <= i * frame_ms < end + 1000]
    offset = (window[-1] + 1) * frame_ms - end if window else None
    return FrameScore(
        len(decisions),
        correct,
        sum(truth),
        missed,
        false_alarms,
        max(0, onset) if onset is not None else None,
        offset,
    )


# ── noise ───────────────────────────────────────────────────────────────────────────────
def mix(clean: bytes, noise: np.ndarray, spans: Sequence[tuple[int, int]], snr_db: float) -> bytes:
    """``clean`` with ``noise`` (float, at least as long) at ``snr_db`` (speech power over the
    spans against the noise's), through µ-law as on the phone."""
    x = np.frombuffer(clean, dtype="<i2").astype(np.float64)
    per_ms = corpus.RATE // 1000
    speech = np.concatenate([x[a * per_ms : b * per_ms] for a, b in spans])
    n = noise[: len(x)].astype(np.float64)
    gain = np.sqrt(np.mean(speech**2) / (np.mean(n**2) * 10 ** (snr_db / 10)))
    out = np.clip(np.rint(x + gain * n), -32768, 32767).astype("<i2")
    return ulaw_decode(ulaw_encode(out.tobytes())).tobytes()


def pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), n)


def street_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Pink noise swelling and falling as traffic passes (a 2-5 s period)."""
    t = np.arange(n) / corpus.RATE
    period = rng.uniform(2.0, 5.0)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)) ** 2
    return pink(rng, n) * envelope


def car_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Brown noise below ~300 Hz (an engine's rumble inside a car) with a faint 100 Hz hum."""
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(801) / 801, "same")  # no drift
    spectrum = np.fft.rfft(brown)
    freqs = np.fft.rfftfreq(n, 1 / corpus.RATE)
    spectrum[freqs > 300] *= 0.05
    rumble = np.fft.irfft(spectrum, n)
    t = np.arange(n) / corpus.RATE
    hum = np.std(rumble) * 0.3 * np.sin(2 * np.pi * 100 * t)
    return rumble + hum


def babble_noise(items: Sequence[corpus.Item], rng: np.random.Generator, n: int) -> np.ndarray:
    """Six of the corpus's speakers at once: each a loop of other items' speech, offset."""
    voices = sorted({it.spec.voice for it in items}, key=lambda v: v.name)
    chosen = [voices[i] for i in rng.permutation(len(voices))[:6]]
    out = np.zeros(n)
    for voice in chosen:
        talk = np.concatenate(
            [
                np.frombuffer(it.pcm, dtype="<i2")[it.spans[0][0] * 8 : it.spans[-1][1] * 8].astype(
                    np.float64
                )
                for it in items
                if it.spec.voice == voice
            ]
        )
        talk /= np.std(talk) + 1e-9
        start = int(rng.integers(0, len(talk)))
        out += np.resize(np.roll(talk, -start), n)
    return out


def noise_of(kind: str, items: Sequence[corpus.Item], seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "babble":
        return babble_noise(items, rng, n)
    return street_noise(rng, n) if kind == "street" else car_noise(rng, n)


# ── the turns ───────────────────────────────────────────────────────────────────────────
class AudioClock:
    """The run's time: milliseconds of caller audio fed so far."""

    def __init__(self) -> None:
        self.now_ms = 0
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    async def until(self, at_ms: int) -> None:
        if at_ms <= self.now_ms:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((at_ms, future))
        await future

    def advance(self, ms: int) -> None:
        self.now_ms += ms
        due = [(t, f) for t, f in self._waiting if t <= self.now_ms]
        self._waiting = [(t, f) for t, f in self._waiting if t > self.now_ms]
        for _, future in due:
            if not future.done():
                future.set_result(None)


@dataclass(slots=True)
class Work:
    """CPU spent deciding: per pause (the speculative transcripts, the turn model), and the
    final transcripts, in ms."""

    pause_ms: list[float] = field(default_factory=list)  # speculative transcripts
    model_ms: list[float] = field(default_factory=list)  # turn model predictions
    final_ms: list[float] = field(default_factory=list)
    interim_ms: list[float] = field(default_factory=list)


class AudioTimeStt:
    """The offline recognizer (``IncrementalStt``), run in the loop's thread for its CPU to
    be measured, its words delivered as much audio time later as it took."""

    incremental = True

    def __init__(self, inner: object, clock: AudioClock, work: Work) -> None:
        self._inner = inner
        self._clock = clock
        self._work = work
        self.listener: Listener | None = None

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        return await self.transcribe_continuing(pcm, sample_rate, "")

    async def transcribe_continuing(self, pcm: bytes, sample_rate: int, prefix: str) -> str:
        endpointer = self.listener.endpointer if self.listener else None
        kind = "final"
        if endpointer is not None and endpointer.user_speaking:
            kind = "pause" if endpointer.silence_ms > 0 else "interim"
        started = self._clock.now_ms
        cpu, wall = time.process_time(), time.perf_counter()
        text: str = self._inner.transcribe_blocking(pcm, sample_rate, prefix)  # type: ignore[attr-defined]
        took_ms = (time.perf_counter() - wall) * 1000
        getattr(self._work, f"{kind}_ms").append((time.process_time() - cpu) * 1000)
        await self._clock.until(started + round(took_ms))
        return text

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class TurnResult:
    item: corpus.Item
    decisions_ms: tuple[int, ...]
    ready_ms: int | None  # when the final transcript of the turn at its end was ready
    heard: str
    reply_ms: float | None  # the offline reply's first audio after the words (measured)

    @property
    def cut_off(self) -> bool:
        return early_cut_off(self.decisions_ms, self.item.end_ms)

    @property
    def decision_ms(self) -> int | None:
        """From the real end to the end of turn decided (the transcript not waited for)."""
        return None if self.cut_off else answer_start(self.decisions_ms, self.item.end_ms, None)

    @property
    def answer_ms(self) -> int | None:
        return (
            None
            if self.cut_off
            else answer_start(self.decisions_ms, self.item.end_ms, self.ready_ms)
        )


# A mode: what the call's turn engine would run beside the listener and hearing, given them
# (the turn model's hints in ``model`` mode); called once per frame after ``hearing.listen``.
ModeSetup = Callable[[Listener, Supervisor, AudioClock, Work], Callable[[], None]]


def _nothing(_l: Listener, _s: Supervisor, _c: AudioClock, _w: Work) -> Callable[[], None]:
    return lambda: None


def _turn_model(
    listener: Listener, tasks: Supervisor, clock: AudioClock, work: Work
) -> Callable[[], None]:
    """The call's turn detector, its model run in the loop's thread for its CPU to be
    measured, its answer delivered as much audio time later as it took."""
    from voicedock.pipeline.hearing.turn_detection import TurnDetector
    from voicedock.pipeline.hearing.turn_model import TurnPrediction, predict_blocking

    async def predict(pcm: bytes, sample_rate: int) -> TurnPrediction:
        started = clock.now_ms
        cpu, wall = time.process_time(), time.perf_counter()
        prediction = predict_blocking(pcm, sample_rate)
        took_ms = (time.perf_counter() - wall) * 1000
        work.model_ms.append((time.process_time() - cpu) * 1000)
        await clock.until(started + round(took_ms))
        return prediction

    return TurnDetector(predict, listener, tasks).listen


_LIMITS = {"silence_timeout_ms": None, "max_duration_ms": None}
MODES: dict[str, tuple[EndpointingConfig, ModeSetup]] = {
    "silence": (EndpointingConfig(**_LIMITS), _nothing),  # type: ignore[arg-type]
    "model": (EndpointingConfig(turn_detection="model", **_LIMITS), _turn_model),  # type: ignore[arg-type]
    # The same with a shorter floor, to show what the floor costs and buys.
    "model-floor-200": (
        EndpointingConfig(turn_detection="model", model_floor_ms=200, **_LIMITS),  # type: ignore[arg-type]
        _turn_model,
    ),
}


async def run_turn(
    item: corpus.Item, mode: str, whisper: object, work: Work, reply: Callable[[str], float]
) -> TurnResult:
    endpointing, setup = MODES[mode]
    config = ConversationConfig(endpointing=endpointing, stt_timeout_s=120.0)
    clock = AudioClock()
    stt = AudioTimeStt(whisper, clock, work)
    listener = Listener(
        config.sample_rate,
        vad=config.vad,
        endpointing=config.endpointing,
        pre_roll_ms=config.pre_roll_ms,
        echo=config.echo,
    )
    stt.listener = listener
    decisions: list[int] = []
    ready: dict[int, int] = {}
    heard: dict[int, str] = {}
    async with Supervisor("bench", __import__("logging").getLogger("bench")) as tasks:
        hearing = Hearing(stt, listener, tasks, config, lambda: clock.now_ms / 1000)  # type: ignore[arg-type]
        extra = setup(listener, tasks, clock, work)
        for i in range(0, len(item.pcm) - FRAME_BYTES + 1, FRAME_BYTES):
            for frame in listener.process(item.pcm[i : i + FRAME_BYTES]):
                if isinstance(frame, UserUtterance):
                    at = frame.stopped.decided_at_ms
                    decisions.append(at)
                    turn = hearing.turn(frame)
                    hearing.used()

                    def done(t: asyncio.Task[str | Exception], at: int = at) -> None:
                        ready[at] = clock.now_ms
                        result = t.result()
                        heard[at] = result if isinstance(result, str) else ""

                    turn.words.add_done_callback(done)
            hearing.listen()
            extra()
            clock.advance(FRAME_MS)
            for _ in range(4):
                await asyncio.sleep(0)
        while len(ready) < len(decisions):  # the last final transcripts
            clock.advance(FRAME_MS)
            await asyncio.sleep(0)
    after = [d for d in decisions if d >= item.end_ms]
    last = after[0] if after else None
    words = heard.get(last, "") if last is not None else ""
    return TurnResult(
        item,
        tuple(decisions),
        ready.get(last) if last is not None else None,
        words,
        reply(words) if last is not None else None,
    )


def reply_timer() -> Callable[[str], float]:
    """The offline reply's first audio after the caller's words, measured (ms): the
    rule-based policy's first chunk, then Piper's first sentence of it."""
    from voicedock.pipeline.frames import ChatMessage
    from voicedock.pipeline.providers.piper_tts import PiperTts
    from voicedock.pipeline.providers.rule_based import RuleBasedPolicy
    from voicedock.pipeline.text import split_sentences

    policy = RuleBasedPolicy({"opening hours": "nine to five"})
    tts = PiperTts(sample_rate=corpus.RATE)
    tts.synthesize_sentence("Hello.")

    def first_chunk(words: str) -> str:
        async def go() -> str:
            async for chunk in policy.stream([ChatMessage("user", words or "hello")]):
                if chunk.strip():
                    return chunk
            return "Sorry?"

        return asyncio.run(go())

    def timed(words: str) -> float:
        t = time.perf_counter()
        # Run the policy on a private loop in a thread: this one is busy feeding audio.
        import threading

        result: list[str] = []
        thread = threading.Thread(target=lambda: result.append(first_chunk(words)))
        thread.start()
        thread.join()
        sentence = next(iter(split_sentences(result[0])), result[0])
        tts.synthesize_sentence(sentence)
        return (time.perf_counter() - t) * 1000

    return timed


async def run_turns(
    items: Sequence[corpus.Item], modes: Sequence[str]
) -> dict[str, tuple[list[TurnResult], Work]]:
    from voicedock.domain.assistant_config import SttConfig
    from voicedock.pipeline.providers.registry import create_stt

    whisper = {
        lang: create_stt(SttConfig(provider="offline", language=lang)) for lang in ("en", "de")
    }
    for stt in whisper.values():
        await stt.warm_up()  # type: ignore[attr-defined]
    reply = reply_timer()
    out: dict[str, tuple[list[TurnResult], Work]] = {m: ([], Work()) for m in modes}
    for n, item in enumerate(
        items
    ):  # modes alternate item by item: the machine's load falls on all
        for mode in modes:
            results, work = out[mode]
            results.append(
                await run_turn(item, mode, whisper[item.spec.voice.language], work, reply)
            )
        if n % 10 == 9:
            print(f"  {n + 1}/{len(items)} items", file=sys.stderr)
    return out


# ── the VADs ────────────────────────────────────────────────────────────────────────────
@dataclass(slots=True)
class VadRow:
    engine: str
    noise: str
    snr: float | None
    scores: list[FrameScore]
    cpu_s: float
    audio_s: float
    cut_offs: int = 0  # items whose turn the (silence-mode) endpointer ended early
    missed: int = 0  # items with no turn started


VAD_ENGINES = {"webrtc": VadConfig(engine="webrtc"), "silero": VadConfig(engine="silero")}


def run_vad(
    engine: str, noise: str, snr: float | None, audio: Sequence[tuple[corpus.Item, bytes]]
) -> VadRow:
    row = VadRow(engine, noise, snr, [], 0.0, 0.0)
    for item, pcm in audio:
        vad = VoiceActivityDetector(VAD_ENGINES[engine])
        endpointer = Endpointer(
            EndpointingConfig(mode="fixed", silence_timeout_ms=None, max_duration_ms=None)
        )
        cpu = time.process_time()
        decisions = vad.process(pcm)
        row.cpu_s += time.process_time() - cpu
        row.audio_s += len(pcm) / (2 * corpus.RATE)
        row.scores.append(score_frames(decisions, item.spans))
        ended = [
            f
            for d in decisions
            for f in endpointer.process(d)
            if not isinstance(f, UserSpeechStarted)
        ]
        stops = [getattr(f, "decided_at_ms", 10**9) for f in ended]
        row.cut_offs += early_cut_off(stops, item.end_ms)
        row.missed += not any(d for d in decisions)
    return row


def run_vads(items: Sequence[corpus.Item], snrs: Sequence[float]) -> list[VadRow]:
    rows = []
    conditions: list[tuple[str, float | None]] = [("clean", None)]
    conditions += [(kind, snr) for kind in NOISES for snr in snrs]
    for noise, snr in conditions:
        audio = []
        for n, item in enumerate(items):
            if snr is None:
                audio.append((item, item.pcm))
                continue
            samples = len(item.pcm) // 2
            others = [it for it in items if it.spec.voice != item.spec.voice]
            layer = noise_of(noise, others, seed=n * 31 + NOISES.index(noise), n=samples)
            clean = np.frombuffer(item.pcm, dtype="<i2")
            audio.append((item, mix(clean.tobytes(), layer, item.spans, snr)))
        for engine in VAD_ENGINES:
            rows.append(run_vad(engine, noise, snr, audio))
    return rows


# ── the report ──────────────────────────────────────────────────────────────────────────
def _f(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:
        return "–"
    return f"{value:.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def cpu(values: Sequence[float]) -> str:
    mean = statistics.fmean(values) if values else None
    return f"{_f(percentile(values, 0.5), 1)} / {_f(mean, 1)}"


def p50_p95(values: Sequence[float]) -> str:
    return f"{_f(percentile(values, 0.5))} / {_f(percentile(values, 0.95))}"


TURN_HEADER = (
    "mode",
    "items",
    "early cut-offs",
    "cut-offs (hesitant items)",
    "no answer",
    "end of turn decided p50 / p95 (finished sentences)",
    "answer start p50 / p95 (finished sentences)",
    "answer start p50 / p95 (all answered)",
    "voice-to-voice p50 / p95",
    "CPU per pause: transcript p50 / mean (ms)",
    "CPU per pause: turn model p50 / mean (ms)",
    "pauses transcribed / asked the model",
)


def turn_table(results: dict[str, tuple[list[TurnResult], Work]]) -> list[str]:
    rows = []
    for mode, (turns, work) in results.items():
        cut = sum(t.cut_off for t in turns)
        hesitant = [t for t in turns if t.item.spec.kind != "complete"]
        answered = [(t, t.answer_ms) for t in turns if t.answer_ms is not None]
        missing = sum(1 for t in turns if not t.cut_off and t.answer_ms is None)
        finished = [ms for t, ms in answered if t.item.spec.kind == "complete"]
        decided = [
            t.decision_ms
            for t in turns
            if t.item.spec.kind == "complete" and t.decision_ms is not None
        ]
        every = [ms for _, ms in answered]
        v2v = [ms + t.reply_ms for t, ms in answered if t.reply_ms is not None]
        pause, model = work.pause_ms, work.model_ms
        rows.append(
            (
                mode,
                str(len(turns)),
                f"{cut} ({100 * cut / len(turns):.1f} %)",
                f"{sum(t.cut_off for t in hesitant)} of {len(hesitant)}",
                str(missing),
                p50_p95(decided),
                p50_p95(finished),
                p50_p95(every),
                p50_p95(v2v),
                cpu(pause),
                cpu(model),
                f"{len(pause)} / {len(model)}",
            )
        )
    return table(TURN_HEADER, rows)


def kind_table(results: dict[str, tuple[list[TurnResult], Work]]) -> list[str]:
    rows = []
    for mode, (turns, _) in results.items():
        for kind in corpus.KINDS:
            of_kind = [t for t in turns if t.item.spec.kind == kind]
            starts = [t.answer_ms for t in of_kind if t.answer_ms is not None]
            cut = sum(t.cut_off for t in of_kind)
            rows.append((mode, kind, str(len(of_kind)), str(cut), p50_p95(starts)))
    header = ("mode", "kind", "items", "early cut-offs", "answer start p50 / p95 (ms)")
    return table(header, rows)


VAD_HEADER = (
    "noise",
    "SNR (dB)",
    "VAD",
    "frame accuracy",
    "speech missed",
    "silence called speech",
    "speech start delay p50 / p95 (ms)",
    "speech end delay p50 / p95 (ms)",
    "turns cut early (fixed 600 ms)",
    "CPU per s of audio (ms)",
)


def vad_table(rows: Sequence[VadRow]) -> list[str]:
    out = []
    for r in rows:
        onsets = [s.onset_ms for s in r.scores if s.onset_ms is not None]
        offsets = [s.offset_ms for s in r.scores if s.offset_ms is not None]
        frames = sum(s.frames for s in r.scores)
        speech = sum(s.speech_frames for s in r.scores)
        out.append(
            (
                r.noise,
                _f(r.snr),
                r.engine,
                f"{100 * sum(s.correct for s in r.scores) / frames:.1f} %",
                f"{100 * sum(s.missed for s in r.scores) / speech:.1f} %",
                f"{100 * sum(s.false_alarms for s in r.scores) / (frames - speech):.1f} %",
                p50_p95(onsets),
                p50_p95(offsets),
                f"{r.cut_offs} of {len(r.scores)}",
                f"{1000 * r.cpu_s / r.audio_s:.2f}",
            )
        )
    return table(VAD_HEADER, out)


# ── the operator's replay (``voicedock eval turns``) on the corpus ─────────────────────────
def replay_results(items: Sequence[corpus.Item]) -> list[turn_replay.ModeResult]:
    """Each item as a call recording with a quiet assistant, through ``voicedock eval
    turns``'s evaluator: every mode and swept setting, per item, then the totals."""
    calls = [
        turn_replay.StereoCall(
            it.spec.key,
            np.frombuffer(it.pcm, dtype=np.int16),
            np.zeros(len(it.pcm) // 2, dtype=np.int16),
            corpus.RATE,
        )
        for it in items
    ]
    modes = turn_replay.replay_modes(turn_replay.MODES)
    return asyncio.run(turn_replay.replay_calls(calls, modes))


def replay_table(
    items: Sequence[corpus.Item], results: Sequence[turn_replay.ModeResult]
) -> list[str]:
    """The evaluator's totals, then per kind of item (the report an operator gets on their
    calls, by the same code)."""
    import msgspec

    kind_of = {it.spec.key: it.spec.kind for it in items}
    per_call = [r for r in results if r.call != turn_replay.TOTAL]
    rows = [r for r in results if r.call == turn_replay.TOTAL]
    for kind in corpus.KINDS:
        for mode in dict.fromkeys(r.mode for r in rows):
            of_kind = [r for r in per_call if r.mode == mode and kind_of[r.call] == kind]
            rows.append(msgspec.structs.replace(turn_replay.total(mode, of_kind), call=kind))
    return turn_replay.markdown_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-voice", type=int, default=12, help="items per speaker")
    parser.add_argument("--modes", default=",".join(MODES), help="end-of-turn modes, in one run")
    parser.add_argument("--snr", default="20,10,5", help="SNRs (dB) of the noisy VAD runs")
    parser.add_argument("--no-turns", action="store_true", help="the VAD runs alone")
    parser.add_argument(
        "--replay-only",
        action="store_true",
        help="only the operator's replay (voicedock eval turns) on the corpus",
    )
    parser.add_argument("--cache", type=Path, default=corpus.default_cache())
    parser.add_argument(
        "--write", action="store_true", help="write bench/results/turn_taking-<date>.md"
    )
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown mode(s) {unknown}; known: {', '.join(MODES)}")
    started = dt.datetime.now(dt.UTC)
    load0 = os.getloadavg()[0]
    items = corpus.build(args.cache, corpus.specs(per_voice=args.per_voice))
    print(f"corpus: {len(items)} items", file=sys.stderr)
    replayed = replay_results(items)
    skip = args.no_turns or args.replay_only
    turns = {} if skip else asyncio.run(run_turns(items, modes))
    vads = [] if args.replay_only else run_vads(items, [float(s) for s in args.snr.split(",") if s])
    load1 = os.getloadavg()[0]
    kinds = {k: sum(it.spec.kind == k for it in items) for k in corpus.KINDS}
    audio_s = sum(it.duration_ms for it in items) / 1000
    machine = f"{platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs"
    lines = [
        "# Turn-taking: end-of-turn modes and VADs on a synthesized telephone corpus"
        f" — {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine}, Python {platform.python_version()}; load average (1 min)"
        f" {load0:.2f} at the start, {load1:.2f} at the end (the machine is shared).",
        f"Command: `.venv/bin/python bench/turn_taking.py {' '.join(sys.argv[1:])}`",
        f"Corpus: {len(items)} items ({', '.join(f'{n} {k}' for k, n in kinds.items())}), "
        f"{len(corpus.VOICES)} speakers ({', '.join(v.name for v in corpus.VOICES)}), "
        f"{audio_s:.0f} s of 8 kHz µ-law audio (`bench/turn_corpus.py`, seed 47).",
        "",
    ]
    lines += [
        "## End of turn replayed (`voicedock eval turns`, no transcripts)",
        "",
        *replay_table(items, replayed),
        "",
    ]
    if turns:
        lines += ["## End of turn", "", *turn_table(turns), "", *kind_table(turns), ""]
    if vads:
        lines += [
            "## VAD (turns ended by fixed 600 ms silence, no transcripts)",
            "",
            *vad_table(vads),
            "",
        ]
    publish("\n".join(lines), "turn_taking", started, write=args.write)


if __name__ == "__main__":
    main()
