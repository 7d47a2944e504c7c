"""Noise suppression (RNNoise, ``pipeline/hearing/noise.py``) on a noisy telephone corpus: the
recognizer's word error and the VADs' frame accuracy with and without it, and its CPU.

The corpus is the turn-taking corpus's English items (``bench/turn_corpus.py``: Piper's
packaged voice at three speaking rates and two espeak-ng voices, 8 kHz through µ-law;
synthesized here into a cache), the items with a filler ("uh", "hmm") left out: the reference
text is what each item says. The noise is made here (no recordings: ``bench/turn_taking.py``'s
makers): *street*, pink noise swelling and falling as traffic passes; *car*, an engine's
low-passed brown rumble with a 100 Hz hum; *babble*, six of the corpus's other speakers at
once; each mixed at 10 and 5 dB SNR (speech power over the speech spans) and taken through
µ-law again, as on the phone.

Each noisy item is heard as a call hears it, then again after a call's ``NoiseSuppressor``
(fed 20 ms frames at 8 kHz, as ``TurnEngine.feed_audio`` does): its output is about 33 ms late
(``LAG_MS``), taken out before scoring so that the labels hold for both.

* word error: faster-whisper on the packaged Whisper-base weights (the node's offline STT,
  ``WhisperStt``, English) on each whole item, against its text (words, lower case,
  punctuation dropped), summed over the items;
* VAD accuracy: webrtcvad and Silero VAD (``[speech.vad] engine``), frames (20 ms) right
  against the labels (speech = inside a span), with the labelled-speech frames missed and the
  silent frames called speech;
* CPU: the suppressor's process time per second of audio at 8 kHz (every item of the run)
  and at 16 kHz (a minute of noise), one call's worth: what ``docs/sizing.md`` counts.

    .venv/bin/python bench/noise.py [--per-voice 4] [--snr 10,5] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import turn_corpus as corpus  # noqa: E402
from report import publish  # noqa: E402
from turn_taking import NOISES, VAD_ENGINES, mix, noise_of, score_frames, table  # noqa: E402
from voice_to_voice import word_errors  # noqa: E402

from voicedock.pipeline.hearing.noise import NoiseSuppressor  # noqa: E402
from voicedock.pipeline.hearing.vad import VoiceActivityDetector  # noqa: E402
from voicedock.pipeline.providers.whisper.stt import WhisperStt  # noqa: E402

RATE = corpus.RATE
FRAME_BYTES = RATE * 20 // 1000 * 2
LAG_MS = 33  # the suppressor's output behind its input (resamplers, frame wait, RNNoise)


@dataclass
class Heard:
    """One condition (a noise at an SNR, with or without suppression) over the corpus."""

    errors: int = 0
    words: int = 0
    frames: dict[str, list[tuple[int, int, int, int, int]]] = field(default_factory=dict)

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else float("nan")

    def vad(self, engine: str) -> tuple[float, float, float]:
        """(accuracy, speech missed, silence called speech), as shares."""
        rows = self.frames.get(engine, [])
        frames, correct, speech, missed, false = (sum(r[i] for r in rows) for i in range(5))
        silent = frames - speech
        return correct / frames, missed / max(1, speech), false / max(1, silent)


@dataclass
class Cpu:
    seconds: float = 0.0
    audio_s: float = 0.0

    @property
    def ms_per_s(self) -> float:
        return 1000 * self.seconds / self.audio_s if self.audio_s else float("nan")


def denoised(pcm: bytes, rate: int, cpu: Cpu) -> bytes:
    """``pcm`` through one call's suppressor, 20 ms at a time, its lag taken out."""
    suppressor = NoiseSuppressor(rate)
    size = rate * 20 // 1000 * 2
    started = time.process_time()
    out = b"".join(suppressor.process(pcm[i : i + size]) for i in range(0, len(pcm), size))
    cpu.seconds += time.process_time() - started
    cpu.audio_s += len(pcm) / (2 * rate)
    lag = rate * LAG_MS // 1000 * 2
    return out[lag:] + bytes(lag)


def hear(items: Sequence[corpus.Item], audio: Sequence[bytes], stt: WhisperStt) -> Heard:
    heard = Heard()
    for item, pcm in zip(items, audio, strict=True):
        errors, words = word_errors(item.spec.text, stt.transcribe_blocking(pcm, RATE, ""))
        heard.errors += errors
        heard.words += words
        for engine, config in VAD_ENGINES.items():
            score = score_frames(VoiceActivityDetector(config).process(pcm), item.spans)
            row = (score.frames, score.correct, score.speech_frames, score.missed)
            heard.frames.setdefault(engine, []).append((*row, score.false_alarms))
    return heard


def wide_cpu(seconds: int = 60) -> Cpu:
    """The suppressor at 16 kHz on a minute of pink noise (speech or not, the same work)."""
    from turn_taking import pink

    rng = np.random.default_rng(3)
    noise = pink(rng, 16000 * seconds)
    pcm = np.clip(np.rint(2000 * noise / np.std(noise)), -32768, 32767).astype("<i2")
    cpu = Cpu()
    denoised(pcm.tobytes(), 16000, cpu)
    return cpu


def cpu_row(rate: str, cpu: Cpu) -> list[str]:
    return [rate, f"{cpu.audio_s:.0f}", f"{cpu.ms_per_s:.1f}", f"{cpu.ms_per_s / 10:.1f} %"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-voice", type=int, default=4, help="items per English speaker")
    parser.add_argument("--snr", default="10,5", help="SNRs (dB) of the noisy runs")
    parser.add_argument("--cache", type=Path, default=corpus.default_cache())
    parser.add_argument("--write", action="store_true", help="write bench/results/noise-<date>.md")
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    load0 = os.getloadavg()[0]
    built = corpus.build(args.cache, corpus.specs(per_voice=args.per_voice))
    english = [it for it in built if it.spec.voice.language == "en"]
    items = [it for it in english if it.spec.kind != "filler"]
    stt = WhisperStt()
    stt.transcribe_blocking(bytes(RATE), RATE, "")  # the model loaded before the first item
    conditions: list[tuple[str, float | None]] = [("clean", None)]
    conditions += [(kind, float(snr)) for kind in NOISES for snr in args.snr.split(",") if snr]
    cpu = Cpu()
    results: list[tuple[str, float | None, Heard, Heard]] = []
    for noise, snr in conditions:
        audio = []
        for n, item in enumerate(items):
            if snr is None:
                audio.append(item.pcm)
                continue
            others = [it for it in english if it.spec.voice != item.spec.voice]
            layer = noise_of(noise, others, seed=n * 31 + NOISES.index(noise), n=len(item.pcm) // 2)
            audio.append(mix(item.pcm, layer, item.spans, snr))
        without = hear(items, audio, stt)
        with_it = hear(items, [denoised(pcm, RATE, cpu) for pcm in audio], stt)
        results.append((noise, snr, without, with_it))
        print(f"{noise} {snr}: WER {without.wer:.3f} -> {with_it.wer:.3f}", file=sys.stderr)
    wide = wide_cpu()
    load1 = os.getloadavg()[0]
    audio_s = sum(it.duration_ms for it in items) / 1000
    machine = f"{platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs"
    rows = []
    for noise, snr, without, with_it in results:
        row = [noise, "–" if snr is None else f"{snr:.0f}"]
        row.append(f"{100 * without.wer:.1f} → **{100 * with_it.wer:.1f}**")
        for engine in VAD_ENGINES:
            (a0, m0, f0), (a1, m1, f1) = without.vad(engine), with_it.vad(engine)
            row.append(f"{100 * a0:.1f} → **{100 * a1:.1f}**")
            row.append(f"{100 * m0:.0f} / {100 * f0:.0f} → {100 * m1:.0f} / {100 * f1:.0f}")
        rows.append(row)
    header = ["noise", "SNR dB", "word error % (without → with)"]
    for engine in VAD_ENGINES:
        header += [f"{engine} accuracy %", f"{engine} missed / false %"]
    lines = [
        f"# Noise suppression (RNNoise) on a noisy telephone corpus — {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine}, Python {platform.python_version()}; load average (1 min)"
        f" {load0:.2f} at the start, {load1:.2f} at the end (the machine is shared).",
        f"Command: `.venv/bin/python bench/noise.py {' '.join(sys.argv[1:])}`",
        f"Corpus: {len(items)} English items of `bench/turn_corpus.py` (fillers left out),"
        f" {len({it.spec.voice for it in items})} speakers, {audio_s:.0f} s of 8 kHz µ-law"
        " audio; noise made here (street, car, babble: no recordings), mixed at the SNRs shown.",
        "",
        *table(header, rows),
        "",
        "Word error: faster-whisper, packaged Whisper-base weights, English, each whole item."
        " VAD: 20 ms frames against the labels; missed = labelled speech called silence,"
        " false = labelled silence called speech. The suppressor's output is scored"
        f" {LAG_MS} ms earlier (its lag).",
        "",
        "## CPU of the suppressor (one call)",
        "",
        *table(
            ["call rate", "audio s", "CPU ms per s of audio", "share of one core"],
            [cpu_row(f"{RATE} Hz", cpu), cpu_row("16000 Hz", wide)],
        ),
        "",
    ]
    publish("\n".join(lines), "noise", started, write=args.write)


if __name__ == "__main__":
    main()
