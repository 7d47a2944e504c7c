"""Barge-in on words, not noises: what a caller's cough, keyboard, door, "mm-hm" or real
question over the assistant's voice does to the message, with barge-in on words off and on.

The corpus is made here, seeded, nothing downloaded or committed:

* *noise*: coughs, keyboard clicks and a door, **synthesized procedurally** (shaped noise
  bursts, no voice: a real cough can be partly voiced, these are not);
* *backchannel*: "Mm-hm.", "Uh-huh.", "Yeah.", "Okay.", "Right." said by Piper (the packaged
  English voice at two speaking rates) and "Ja." and "Genau." said by espeak-ng's German voice
  (Piper's packaged voice is English only);
* *words*: "Sorry, one more question.", "Wait, that's wrong.", "Can I ask something?" by Piper
  at three rates, and "Moment, das stimmt nicht." by espeak-ng's German voice.

Each sound starts 1.5-2 s into a long assistant message (Piper), at -22 dBFS (the assistant is
sent at -20 dBFS), 8 kHz through µ-law. Each is run twice: on a *clean* line (the caller's
channel carries only the caller) and with *echo* (the assistant's audio coming back
``ECHO_DELAY_MS`` late at ``ECHO_DB``, as the echo gate's tests model it; after the assistant
stops, so does its echo).

Each item goes frame by frame (20 ms) through a call's ``Listener`` (webrtcvad, the echo gate
told what was sent, the endpointer with the defaults: 240 ms of speech over the assistant
interrupt it). The first ``Interruption`` stops the assistant's audio, with the feature on or
off (on, the message is held). Off, that is the verdict: the message is cut. On, the caller's
utterance (when the endpointer ends it) is measured for voicing (``pitched_ms``), transcribed by
offline Whisper (``base``, the call's language) and judged by ``BargeInConfig.stands`` with the
language's backchannels, as the turn engine does; the verdict comes when the transcript is
(its wall time on this machine added to the audio time of the end of turn).

Piper samples its voice afresh each time (the same text never sounds quite the same), so the
corpus is synthesized ``--runs`` times (the noises with the next seed each time) and the counts
are totals over the runs, with each run's beside them.

Reported per kind, feature off and on: false cuts (noises and backchannels that stop the
message for good), missed interruptions (words that do not), and for words: from the sound's
first sample to the audio stopping (pause) and to the verdict.

    .venv/bin/python bench/barge_in.py [--seed 62] [--runs 3] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from report import publish  # noqa: E402

from voicedock.media.codecs import ulaw_decode, ulaw_encode  # noqa: E402
from voicedock.pipeline.dialogue.words_decide import BargeInConfig  # noqa: E402
from voicedock.pipeline.frames import Interruption  # noqa: E402
from voicedock.pipeline.hearing.listener import Listener, UserUtterance  # noqa: E402
from voicedock.pipeline.hearing.voicing import pitched_ms  # noqa: E402

RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000
ASSISTANT_DBFS = -20.0
CALLER_DBFS = -22.0
ECHO_DELAY_MS = 120
ECHO_DB = -18.0  # the echo's level under the assistant's sent audio
TAIL_MS = 2500  # after the caller's sound: room for the end of turn
KINDS = ("noise", "backchannel", "words")
CONDITIONS = ("clean", "echo")
ASSISTANT = (
    "Thank you for calling the Riverside dental clinic. Our opening hours are Monday to "
    "Friday from eight in the morning to six in the evening, and Saturday from nine to one. "
    "If you would like to book, move or cancel an appointment, I can help you with that "
    "right now."
)
BACKCHANNELS = {"en": ("Mm-hm.", "Uh-huh.", "Yeah.", "Okay.", "Right."), "de": ("Ja.", "Genau.")}
WORDS = {
    "en": ("Sorry, one more question.", "Wait, that's wrong.", "Can I ask something?"),
    "de": ("Moment, das stimmt nicht.",),
}


# ── scoring (pure; tests/bench/test_barge_in_scoring.py) ─────────────────────────────────
@dataclass(frozen=True, slots=True)
class Heard:
    """What the call's listener (and, held, the recognizer) made of one item. Times are ms
    from the caller's sound's first sample."""

    name: str
    kind: str  # "noise" | "backchannel" | "words"
    language: str
    condition: str  # "clean" | "echo"
    paused_ms: int | None  # the assistant's audio stopped (an Interruption); None: never
    decided_ms: int | None = None  # the caller's utterance ended (endpointing)
    transcribe_ms: int = 0  # the recognizer's wall time on the utterance
    text: str | None = None  # its transcript; None: no utterance ended
    voiced_ms: int = 0  # of it pitched
    run: int = 0  # which synthesis of the corpus (Piper's voice varies from one to the next)


def cuts(item: Heard, on_words: bool, config: BargeInConfig) -> bool:
    """Whether the message is stopped for good: any interruption with the feature off; with it
    on, one whose words stand (an utterance that never ended lets the message go on)."""
    if item.paused_ms is None:
        return False
    if not on_words:
        return True
    if item.text is None:
        return False
    return config.for_language(item.language).stands(item.text, item.voiced_ms)


def verdict_ms(item: Heard, on_words: bool) -> int | None:
    """When the cut is decided: at the pause with the feature off; on, once the utterance
    ended and its words were transcribed."""
    if item.paused_ms is None:
        return None
    if not on_words:
        return item.paused_ms
    if item.decided_ms is None:
        return None
    return item.decided_ms + item.transcribe_ms


@dataclass(frozen=True, slots=True)
class Score:
    items: int
    false_cuts: int  # noises and backchannels that stopped the message
    missed: int  # words that did not
    paused: int  # items whose audio paused (held with the feature on)
    pause_ms: tuple[int, ...]  # words cut: sound start to audio stopped
    verdict_ms: tuple[int, ...]  # words cut: sound start to the verdict
    # Paused, then let go on (the feature on): how long the caller heard no assistant.
    held_ms: tuple[int, ...] = ()


def score(items: Sequence[Heard], on_words: bool, config: BargeInConfig) -> Score:
    false_cuts = missed = 0
    pauses: list[int] = []
    verdicts: list[int] = []
    held: list[int] = []
    for item in items:
        cut = cuts(item, on_words, config)
        v = verdict_ms(item, on_words)
        if not cut and item.paused_ms is not None and v is not None:
            held.append(v - item.paused_ms)
        if item.kind == "words":
            if not cut:
                missed += 1
            elif item.paused_ms is not None:
                pauses.append(item.paused_ms)
                if v is not None:
                    verdicts.append(v)
        elif cut:
            false_cuts += 1
    return Score(
        len(items),
        false_cuts,
        missed,
        sum(i.paused_ms is not None for i in items),
        tuple(pauses),
        tuple(verdicts),
        tuple(held),
    )


# ── the corpus ─────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True, slots=True)
class Sound:
    name: str
    kind: str
    language: str
    samples: np.ndarray  # float, 8 kHz, at CALLER_DBFS over its active part


def _band(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, n)


def _decay(n: int, tau_ms: float, attack_ms: float = 5.0) -> np.ndarray:
    t = np.arange(n) / RATE * 1000
    return np.minimum(1.0, t / attack_ms) * np.exp(-t / tau_ms)


def cough(rng: np.random.Generator) -> np.ndarray:
    """One to three bursts of band-limited noise (300-3,000 Hz), a sharp onset, 120-220 ms."""
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        n = int(RATE * rng.uniform(0.12, 0.22))
        parts.append(_band(rng, n, 300, 3000) * _decay(n, rng.uniform(50, 90), 8))
        parts.append(np.zeros(int(RATE * rng.uniform(0.08, 0.15))))
    return np.concatenate(parts)


def keyboard(rng: np.random.Generator) -> np.ndarray:
    """Eight to fourteen key clicks: 6 ms of high-passed noise each, 80-220 ms apart."""
    parts = []
    for _ in range(int(rng.integers(8, 15))):
        n = int(RATE * 0.006)
        parts.append(_band(rng, 256, 1500, 4000)[:n] * _decay(n, 2.0, 0.5))
        parts.append(np.zeros(int(RATE * rng.uniform(0.08, 0.22))))
    return np.concatenate(parts)


def door(rng: np.random.Generator) -> np.ndarray:
    """A latch's click, then the slam: a low thump (80-300 Hz) ringing 150-250 ms, a rattle."""
    click_n, thump_n = int(RATE * 0.02), int(RATE * rng.uniform(0.35, 0.5))
    click = _band(rng, click_n, 1000, 3500) * _decay(click_n, 4.0, 0.5)
    thump = _band(rng, thump_n, 80, 300) * _decay(thump_n, rng.uniform(150, 250), 3) * 3
    rattle = _band(rng, thump_n, 800, 2500) * _decay(thump_n, 40.0, 2) * 0.5
    gap = np.zeros(int(RATE * rng.uniform(0.04, 0.1)))
    return np.concatenate([click, gap, thump + rattle])


def level(x: np.ndarray, dbfs: float) -> np.ndarray:
    """``x`` scaled to ``dbfs`` RMS over its active part (10 ms windows within 30 dB of its
    loudest)."""
    win = RATE // 100
    n = len(x) // win
    rms = np.sqrt(np.mean(x[: n * win].reshape(n, win) ** 2, axis=1))
    active = rms[rms > rms.max() * 10 ** (-30 / 20)]
    power = float(np.sqrt(np.mean(active**2)))
    return x * (32768 * 10 ** (dbfs / 20) / power)


def trimmed(pcm: bytes) -> np.ndarray:
    """Synthesized speech without its leading and trailing silence."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    loud = np.flatnonzero(np.abs(x) > 32768 * 10 ** (-45 / 20))
    return x[loud[0] : loud[-1] + 1] if loud.size else x


Synthesize = Callable[[str, str, float], bytes]  # (engine, text, speed) -> 8 kHz PCM


def synthesizer() -> Synthesize:
    from voicedock.pipeline.providers.espeak_tts import EspeakTts
    from voicedock.pipeline.providers.piper_tts import PiperTts

    piper: dict[float, PiperTts] = {}

    def synthesize(engine: str, text: str, speed: float) -> bytes:
        if engine == "piper":
            tts = piper.setdefault(speed, PiperTts(sample_rate=RATE, length_scale=speed))
            return tts.synthesize_sentence(text)
        return EspeakTts(
            sample_rate=RATE, voice="de", words_per_minute=round(165 * speed)
        ).synthesize_sentence(text)

    return synthesize


def sounds(seed: int, synthesize: Synthesize) -> list[Sound]:
    rng = np.random.default_rng(seed)
    out: list[Sound] = []
    for make in (cough, keyboard, door):
        for n in range(4):
            out.append(Sound(f"{make.__name__}-{n}", "noise", "en", level(make(rng), CALLER_DBFS)))
    for kind, phrases in (("backchannel", BACKCHANNELS), ("words", WORDS)):
        for language, texts in phrases.items():
            engine = "piper" if language == "en" else "espeak"
            speeds = (
                ((1.0, 1.2) if kind == "backchannel" else (1.0, 0.85, 1.2))
                if engine == "piper"
                else (1.0,)
            )
            for text in texts:
                for speed in speeds:
                    x = trimmed(synthesize(engine, text, speed))
                    name = f"{text.rstrip('.?')} ({engine} {speed:g})"
                    out.append(Sound(name, kind, language, level(x, CALLER_DBFS)))
    return out


# ── one item through the call's listener and the recognizer ─────────────────────────────
def _pcm(x: np.ndarray) -> bytes:
    pcm: bytes = np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()
    return pcm


def run_item(
    sound: Sound,
    assistant: np.ndarray,
    condition: str,
    onset_ms: int,
    transcribe: Callable[[bytes, str], str],
) -> Heard:
    """``sound`` at ``onset_ms`` into the assistant's message, frame by frame through a call's
    listener; the assistant's audio stops at the first interruption."""
    onset = onset_ms * RATE // 1000
    total = onset + len(sound.samples) + TAIL_MS * RATE // 1000
    total += -total % FRAME_SAMPLES
    caller = np.zeros(total)
    caller[onset : onset + len(sound.samples)] = sound.samples
    sent = np.zeros(total)
    delay = ECHO_DELAY_MS * RATE // 1000
    gain = 10 ** (ECHO_DB / 20) if condition == "echo" else 0.0
    listener = Listener(RATE)
    stopped = False
    paused: int | None = None
    utterance: tuple[UserUtterance, int] | None = None
    for start in range(0, total, FRAME_SAMPLES):
        end = start + FRAME_SAMPLES
        audible = not stopped and end <= len(assistant)
        if audible:
            sent[start:end] = assistant[start:end]
            listener.echo.play(_pcm(sent[start:end]))
        heard = caller[start:end].copy()
        if start >= delay:
            heard += gain * sent[start - delay : end - delay]
        frame = ulaw_decode(ulaw_encode(_pcm(heard))).tobytes()
        now_ms = end * 1000 // RATE
        for decided in listener.process(frame, audible):
            if isinstance(decided, Interruption) and paused is None:
                paused, stopped = now_ms - onset_ms, True
            elif isinstance(decided, UserUtterance) and paused is not None and utterance is None:
                utterance = (decided, now_ms - onset_ms)
        if utterance is not None:
            break
    base = Heard(sound.name, sound.kind, sound.language, condition, paused)
    if utterance is None:
        return base
    said, decided_ms = utterance
    wall = time.perf_counter()
    text = transcribe(said.pcm, sound.language)
    took = round((time.perf_counter() - wall) * 1000)
    voiced = pitched_ms(said.pcm, RATE)
    return Heard(
        sound.name,
        sound.kind,
        sound.language,
        condition,
        paused,
        decided_ms,
        took,
        text,
        voiced,
    )


def whisper() -> Callable[[bytes, str], str]:
    from voicedock.domain.assistant_config import SttConfig
    from voicedock.pipeline.providers.registry import create_stt

    stts = {lang: create_stt(SttConfig(provider="offline", language=lang)) for lang in ("en", "de")}
    for stt in stts.values():
        asyncio.run(stt.warm_up())  # type: ignore[attr-defined]

    def transcribe(pcm: bytes, language: str) -> str:
        text: str = stts[language].transcribe_blocking(pcm, RATE, "")  # type: ignore[attr-defined]
        return text

    return transcribe


# ── the report ─────────────────────────────────────────────────────────────────────────
def _ms(values: Sequence[int], which: str) -> str:
    """The median (the lower of the middle two) or the most of ``values``; "–" for none."""
    if not values:
        return "–"
    return str(statistics.median_low(values) if which == "p50" else max(values))


def table(results: Sequence[Heard], config: BargeInConfig) -> list[str]:
    lines = [
        "| line | feature | noises cut | backchannels cut | words missed"
        " | words: pause p50 / max ms | words: verdict p50 / max ms | paused"
        " | let go on: silence p50 / max ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for condition in CONDITIONS:
        mine = [r for r in results if r.condition == condition]
        for on in (False, True):
            by = {k: score([r for r in mine if r.kind == k], on, config) for k in KINDS}
            words = by["words"]
            held = [ms for s in by.values() for ms in s.held_ms]
            lines.append(
                f"| {condition} | {'on' if on else 'off'}"
                f" | {by['noise'].false_cuts} / {by['noise'].items}"
                f" | {by['backchannel'].false_cuts} / {by['backchannel'].items}"
                f" | {words.missed} / {words.items}"
                f" | {_ms(words.pause_ms, 'p50')} / {_ms(words.pause_ms, 'max')}"
                f" | {_ms(words.verdict_ms, 'p50')} / {_ms(words.verdict_ms, 'max')}"
                f" | {sum(s.paused for s in by.values())} / {len(mine)}"
                f" | {len(held)}: {_ms(held, 'p50')} / {_ms(held, 'max')} |"
            )
    return lines


def table_by_run(results: Sequence[Heard], config: BargeInConfig, runs: int) -> list[str]:
    """False cuts and missed words per synthesis of the corpus, as "false cuts / missed"."""
    head = " | ".join(f"{c} {'on' if on else 'off'}" for c in CONDITIONS for on in (False, True))
    lines = [f"| run | {head} |", "|---" * (1 + 2 * len(CONDITIONS)) + "|"]
    for run in range(runs):
        cells = []
        for condition in CONDITIONS:
            mine = [r for r in results if r.run == run and r.condition == condition]
            for on in (False, True):
                s = score(mine, on, config)
                cells.append(f"{s.false_cuts} / {s.missed}")
        lines.append(f"| {run + 1} | {' | '.join(cells)} |")
    return lines


def item_lines(results: Sequence[Heard], config: BargeInConfig) -> list[str]:
    lines = [
        "| item | kind | line | paused ms | turn ended ms | Whisper ms | transcript"
        " | voiced ms | on: cut |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        text = "–" if r.text is None else f'"{r.text}"'
        lines.append(
            f"| {r.name} | {r.kind} | {r.condition}"
            f" | {'–' if r.paused_ms is None else r.paused_ms}"
            f" | {'–' if r.decided_ms is None else r.decided_ms}"
            f" | {r.transcribe_ms if r.text is not None else '–'} | {text}"
            f" | {r.voiced_ms if r.text is not None else '–'}"
            f" | {'yes' if cuts(r, True, config) else 'no'} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=62)
    parser.add_argument("--runs", type=int, default=3, help="syntheses of the corpus")
    parser.add_argument(
        "--write", action="store_true", help="write bench/results/barge_in-<date>.md"
    )
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    load0 = os.getloadavg()[0]
    synthesize = synthesizer()
    transcribe = whisper()
    results: list[Heard] = []
    for run in range(args.runs):
        assistant = level(trimmed(synthesize("piper", ASSISTANT, 1.0)), ASSISTANT_DBFS)
        corpus = sounds(args.seed + run, synthesize)
        rng = np.random.default_rng(args.seed + 1000 + run)
        for sound in corpus:
            onset_ms = int(rng.integers(1500, 2001)) // FRAME_MS * FRAME_MS
            for condition in CONDITIONS:
                heard = run_item(sound, assistant, condition, onset_ms, transcribe)
                results.append(dataclasses.replace(heard, run=run))
        print(f"  run {run + 1}/{args.runs}", file=sys.stderr)
    load1 = os.getloadavg()[0]
    config = BargeInConfig(on_words=True)
    counts = {k: sum(s.kind == k for s in corpus) for k in KINDS}
    machine = f"{platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs"
    lines = [
        f"# Barge-in on words: noises, backchannels and interruptions over the assistant"
        f" — {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine}, Python {platform.python_version()}; load average (1 min)"
        f" {load0:.2f} at the start, {load1:.2f} at the end (the machine is shared).",
        f"Command: `.venv/bin/python bench/barge_in.py {' '.join(sys.argv[1:])}`",
        f"Corpus: {len(corpus)} sounds a run ({', '.join(f'{n} {k}' for k, n in counts.items())}),"
        f" each on a clean line and with echo ({ECHO_DB:g} dB, {ECHO_DELAY_MS} ms),"
        f" synthesized {args.runs} times (seeds {args.seed}-{args.seed + args.runs - 1}): the"
        f" counts are totals over the runs; the assistant's message (Piper) about"
        f" {len(assistant) // (RATE // 1000)} ms.",
        "",
        *table(results, config),
        "",
        "## Each run",
        "",
        *table_by_run(results, config, args.runs),
        "",
        "## Items (the first run)",
        "",
        *item_lines([r for r in results if r.run == 0], config),
        "",
    ]
    publish("\n".join(lines), "barge_in", started, write=args.write)


if __name__ == "__main__":
    main()
