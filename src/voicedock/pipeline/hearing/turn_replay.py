"""Turn-taking judged on recorded calls: the caller's side of a stereo recording replayed
through the node's own VAD, endpointing and turn model, for each end-of-turn mode.

A call recording (``docs/recordings.md``) holds the caller on the left channel and the
assistant on the right, on one timeline. The caller's channel goes, 20 ms at a time, through
the ``Listener`` a live call uses (VAD, echo gate, endpointer) built from each mode's
``EndpointingConfig``, and in ``model`` modes through its ``TurnDetector`` (Smart Turn,
asked at each pause; its answer counted within the frame, its CPU time reported apart). The
assistant's channel says when a reply was playing: its frames are what the echo gate is
told was sent, and a frame louder than ``ASSISTANT_FLOOR_DBFS`` is "assistant audible" to
the endpointer, so a turn started over it is a barge-in. The reply's timing is the recorded
call's: a mode that would have answered sooner or later does not move it.

What is counted, per call and mode (the caller's speech: runs of the same VAD's speech
frames, gaps under ``speech_gap_ms`` joined, runs under ``min_speech_ms`` dropped):

* turns: the ends of turn the mode decided;
* early cut-offs: an end of turn after which the caller went on speaking within
  ``RESUME_WITHIN_MS`` (they had not finished: ``cut_off.py``, as a live call counts it);
* answer start: from the caller's last speech frame to the end of turn decided, over the
  turns not cut off (the reply can start no sooner; the transcript's wait is not included);
* barge-ins: speech the caller started while the assistant was audible and kept up for at
  least ``barge_in_ms``; missed: one no ``Interruption`` was decided in; false: an
  ``Interruption`` decided in no such speech (a cough, a click, an "mm-hm").

No transcripts are made: the transcript's hint about a finished sentence (adaptive silence
endpointing) is not given, so ``silence`` ends a turn after ``end_silence_ms``, as a call
whose transcripts come late does. ``bench/turn_taking.py`` measures the transcripts' part.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from voicedock.aio import Supervisor
from voicedock.domain.assistant_config import TURN_MODEL, TURN_SILENCE
from voicedock.errors import MediaError
from voicedock.media.codecs import resample
from voicedock.percentile import percentile
from voicedock.pipeline.audio import rms_dbfs
from voicedock.pipeline.frames import Interruption, UserSpeechStopped
from voicedock.pipeline.hearing.cut_off import resumed_early
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.listener import Listener, UserUtterance
from voicedock.pipeline.hearing.turn_detection import PredictTurn, TurnDetector
from voicedock.pipeline.hearing.turn_model import TurnPrediction, predict_blocking
from voicedock.pipeline.hearing.vad import VadConfig, VoiceActivityDetector

log = logging.getLogger("voicedock.pipeline")

FRAME_MS = 20
BARGE_IN_MS = 500  # speech over the reply at least this long is a real barge-in
ASSISTANT_FLOOR_DBFS = -45.0  # an assistant frame louder than this is audible
CALL_RATES = (8000, 16000)  # what the listener hears; other rates are resampled
MODES = (TURN_SILENCE, TURN_MODEL)
# The settings swept beside each mode's defaults: silence waited, the model's floor.
SWEEP_END_SILENCE_MS = (400, 800, 1000)
SWEEP_MODEL_FLOOR_MS = (200, 500)
TOTAL = "total"

Samples = npt.NDArray[np.int16]


class RecordingFormatError(MediaError):
    """The file is not a two-channel call recording this replay can read."""


@dataclass(frozen=True, slots=True)
class StereoCall:
    """A call's two sides on one timeline, 16-bit PCM at ``sample_rate``."""

    name: str
    caller: Samples
    assistant: Samples
    sample_rate: int


@dataclass(frozen=True, slots=True)
class ReplayMode:
    """An end-of-turn mode as a call runs it: its name and the endpointer's settings."""

    name: str
    endpointing: EndpointingConfig

    @property
    def uses_model(self) -> bool:
        return self.endpointing.turn_detection == TURN_MODEL


class ModeResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one mode did on one call (or, ``call == "total"``, on all of them)."""

    call: str
    mode: str
    turns: int
    early_cut_offs: int
    answer_start_ms: list[int]
    barge_ins: int
    missed_barge_ins: int
    false_barge_ins: int
    model_predictions: int = 0
    model_cpu_ms: float = 0.0

    @property
    def answer_start_p50_ms(self) -> int | None:
        return percentile(self.answer_start_ms, 0.5)

    @property
    def answer_start_p95_ms(self) -> int | None:
        return percentile(self.answer_start_ms, 0.95)


class ModeSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A row of the report, as ``--json`` prints it."""

    call: str
    mode: str
    turns: int
    early_cut_offs: int
    answer_start_p50_ms: int | None
    answer_start_p95_ms: int | None
    barge_ins: int
    missed_barge_ins: int
    false_barge_ins: int
    model_predictions: int
    model_cpu_ms: float


# ── the modes ───────────────────────────────────────────────────────────────────────────
def replay_modes(names: Iterable[str], sweep: bool = True) -> list[ReplayMode]:
    """Each named mode with the call defaults (no silence timeout nor duration limit: a
    recording is replayed to its end), then, with ``sweep``, its swept settings."""
    out: list[ReplayMode] = []
    for name in names:
        if name not in MODES:
            raise ValueError(f"unknown mode {name!r}; known: {', '.join(MODES)}")
        base = EndpointingConfig(turn_detection=name, silence_timeout_ms=None, max_duration_ms=None)
        out.append(ReplayMode(name, base))
        if sweep and name == TURN_SILENCE:
            out += [
                ReplayMode(f"{name} end_silence_ms={ms}", replace(base, end_silence_ms=ms))
                for ms in SWEEP_END_SILENCE_MS
            ]
        elif sweep:
            out += [
                ReplayMode(f"{name} model_floor_ms={ms}", replace(base, model_floor_ms=ms))
                for ms in SWEEP_MODEL_FLOOR_MS
            ]
    return out


# ── reading a recording ─────────────────────────────────────────────────────────────────
def read_call(path: Path, name: str | None = None) -> StereoCall:
    """A two-channel recording (WAV or FLAC): the caller left, the assistant right; a rate
    the listener does not take is resampled to 8 kHz (16 kHz from above 16 kHz)."""
    import soundfile

    try:
        audio, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    except (OSError, RuntimeError) as exc:  # soundfile.LibsndfileError is a RuntimeError
        raise RecordingFormatError(f"{path}: not a readable recording ({exc})") from exc
    if audio.shape[1] != 2:
        raise RecordingFormatError(
            f"{path}: {audio.shape[1]} channel(s); a call recording has two "
            "(the caller on the left, the assistant on the right)"
        )
    caller: Samples = np.ascontiguousarray(audio[:, 0])
    assistant: Samples = np.ascontiguousarray(audio[:, 1])
    if rate not in CALL_RATES:
        to = 16000 if rate > 16000 else 8000
        caller, assistant = resample(caller, rate, to), resample(assistant, rate, to)
        rate = to
    return StereoCall(name or path.stem, caller, assistant, int(rate))


# ── what happened on the line ───────────────────────────────────────────────────────────
def frames_of(samples: Samples, sample_rate: int) -> list[bytes]:
    """The whole 20 ms frames of a channel, as a call's media delivers them."""
    size = sample_rate * FRAME_MS // 1000
    count = len(samples) // size
    return [samples[k * size : (k + 1) * size].tobytes() for k in range(count)]


def audible(frames: Sequence[bytes], floor_dbfs: float = ASSISTANT_FLOOR_DBFS) -> list[bool]:
    """Per frame: louder than ``floor_dbfs`` of full scale."""
    return [rms_dbfs(frame) > floor_dbfs for frame in frames]


def speech_segments(speech: Sequence[bool], cfg: EndpointingConfig) -> list[tuple[int, int]]:
    """The caller's speech as (start, end) ms: runs of speech frames, a gap shorter than
    ``speech_gap_ms`` joined, a run shorter than ``min_speech_ms`` dropped."""
    runs: list[tuple[int, int]] = []
    for k, is_speech in enumerate(speech):
        if not is_speech:
            continue
        start, end = k * FRAME_MS, (k + 1) * FRAME_MS
        if runs and start - runs[-1][1] < cfg.speech_gap_ms:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return [(a, b) for a, b in runs if b - a >= cfg.min_speech_ms]


@dataclass(frozen=True, slots=True)
class Line:
    """A call's caller frames, their speech, and when the assistant was audible."""

    caller: list[bytes]
    assistant: list[bytes]
    loud: list[bool]
    speech: list[tuple[int, int]]


def line_of(call: StereoCall, cfg: EndpointingConfig) -> Line:
    caller = frames_of(call.caller, call.sample_rate)
    assistant = frames_of(call.assistant, call.sample_rate)
    assistant += [b""] * (len(caller) - len(assistant))
    vad = VoiceActivityDetector(VadConfig(sample_rate=call.sample_rate))
    speech = [any(vad.process(frame)) for frame in caller]
    return Line(caller, assistant, audible(assistant), speech_segments(speech, cfg))


# ── judging the decisions ───────────────────────────────────────────────────────────────
def cut_off(decided_ms: int, speech: Sequence[tuple[int, int]]) -> bool:
    """The caller went on speaking within ``RESUME_WITHIN_MS`` of the end of turn."""
    return any(resumed_early(decided_ms, start) for start, _ in speech)


def real_barge_ins(
    speech: Sequence[tuple[int, int]], loud: Sequence[bool], barge_in_ms: int
) -> list[tuple[int, int]]:
    """Speech the caller started while the assistant was audible, at least ``barge_in_ms``."""
    return [
        (a, b)
        for a, b in speech
        if b - a >= barge_in_ms and a // FRAME_MS < len(loud) and loud[a // FRAME_MS]
    ]


def judge(
    call: str,
    mode: str,
    stops: Sequence[UserSpeechStopped],
    interruptions: Sequence[int],
    line: Line,
    barge_in_ms: int = BARGE_IN_MS,
) -> ModeResult:
    """The counts of one mode's decisions on one call."""
    cut = [cut_off(s.decided_at_ms, line.speech) for s in stops]
    starts = [s.decided_at_ms - s.ended_at_ms for s, c in zip(stops, cut, strict=True) if not c]
    real = real_barge_ins(line.speech, line.loud, barge_in_ms)

    def within(at: int, span: tuple[int, int]) -> bool:
        return span[0] <= at <= span[1] + FRAME_MS

    missed = sum(not any(within(at, span) for at in interruptions) for span in real)
    false = sum(not any(within(at, span) for span in real) for at in interruptions)
    return ModeResult(
        call=call,
        mode=mode,
        turns=len(stops),
        early_cut_offs=sum(cut),
        answer_start_ms=starts,
        barge_ins=len(real),
        missed_barge_ins=missed,
        false_barge_ins=false,
    )


# ── the replay ──────────────────────────────────────────────────────────────────────────
@dataclass(slots=True)
class _ModelWork:
    predictions: int = 0
    cpu_ms: float = 0.0


def _predict_here(work: _ModelWork) -> PredictTurn:
    """The turn model run at once (its answer within the frame), its CPU time counted."""

    async def predict(pcm: bytes, sample_rate: int) -> TurnPrediction:
        started = time.process_time()
        prediction = predict_blocking(pcm, sample_rate)
        work.predictions += 1
        work.cpu_ms += (time.process_time() - started) * 1000
        return prediction

    return predict


async def replay(
    call: StereoCall, mode: ReplayMode, barge_in_ms: int = BARGE_IN_MS, line: Line | None = None
) -> ModeResult:
    """One mode on one call: the caller's frames through a call's listener (and turn model)."""
    cfg = mode.endpointing
    line = line or line_of(call, cfg)
    listener = Listener(
        call.sample_rate, vad=VadConfig(sample_rate=call.sample_rate), endpointing=cfg
    )
    stops: list[UserSpeechStopped] = []
    interruptions: list[int] = []
    work = _ModelWork()
    async with Supervisor("turn replay", log) as tasks:
        detector = TurnDetector(_predict_here(work), listener, tasks) if mode.uses_model else None
        for frame, sent, loud in zip(line.caller, line.assistant, line.loud, strict=True):
            if loud:
                listener.echo.play(sent)
            for decided in listener.process(frame, loud):
                if isinstance(decided, UserUtterance):
                    stops.append(decided.stopped)
                elif isinstance(decided, Interruption):
                    interruptions.append(decided.at_ms)
            if detector is not None:
                detector.listen()
                for _ in range(3):  # the prediction runs and hints the endpointer
                    await asyncio.sleep(0)
    result = judge(call.name, mode.name, stops, interruptions, line, barge_in_ms)
    return msgspec.structs.replace(
        result, model_predictions=work.predictions, model_cpu_ms=round(work.cpu_ms, 1)
    )


async def replay_calls(
    calls: Sequence[StereoCall], modes: Sequence[ReplayMode], barge_in_ms: int = BARGE_IN_MS
) -> list[ModeResult]:
    """Every mode on every call (per call, modes side by side), then each mode's total."""
    out: list[ModeResult] = []
    for call in calls:
        line = line_of(call, modes[0].endpointing) if modes else None
        for mode in modes:
            out.append(await replay(call, mode, barge_in_ms, line))
    return out + [total(mode.name, [r for r in out if r.mode == mode.name]) for mode in modes]


def total(mode: str, results: Sequence[ModeResult]) -> ModeResult:
    """One mode's results over all calls."""
    return ModeResult(
        call=TOTAL,
        mode=mode,
        turns=sum(r.turns for r in results),
        early_cut_offs=sum(r.early_cut_offs for r in results),
        answer_start_ms=[ms for r in results for ms in r.answer_start_ms],
        barge_ins=sum(r.barge_ins for r in results),
        missed_barge_ins=sum(r.missed_barge_ins for r in results),
        false_barge_ins=sum(r.false_barge_ins for r in results),
        model_predictions=sum(r.model_predictions for r in results),
        model_cpu_ms=round(sum(r.model_cpu_ms for r in results), 1),
    )


# ── the report ──────────────────────────────────────────────────────────────────────────
def summary(result: ModeResult) -> ModeSummary:
    """The report's row of ``result``: each of its fields the result's of the same name (the
    answer-start percentiles are the result's properties)."""
    return msgspec.convert(result, ModeSummary, from_attributes=True)


REPORT_HEADER = (
    "call",
    "mode",
    "turns",
    "early cut-offs",
    "answer start p50 / p95 (ms)",
    "barge-ins",
    "missed barge-ins",
    "false barge-ins",
    "turn model asked / CPU (ms)",
)


def _ms(value: int | None) -> str:
    return "–" if value is None else str(value)


def report_rows(results: Sequence[ModeResult]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in results:
        share = f" ({100 * r.early_cut_offs / r.turns:.1f} %)" if r.turns else ""
        rows.append(
            (
                r.call,
                r.mode,
                str(r.turns),
                f"{r.early_cut_offs}{share}",
                f"{_ms(r.answer_start_p50_ms)} / {_ms(r.answer_start_p95_ms)}",
                str(r.barge_ins),
                str(r.missed_barge_ins),
                str(r.false_barge_ins),
                f"{r.model_predictions} / {r.model_cpu_ms:.0f}" if r.model_predictions else "–",
            )
        )
    return rows


def markdown_table(results: Sequence[ModeResult]) -> list[str]:
    """The report as a Markdown table, one row per call and mode, the totals last."""
    return [
        "| " + " | ".join(REPORT_HEADER) + " |",
        "|" + "---|" * len(REPORT_HEADER),
        *("| " + " | ".join(row) + " |" for row in report_rows(results)),
    ]
