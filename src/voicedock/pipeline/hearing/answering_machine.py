"""Answering-machine detection from the first seconds of the callee's audio (PBX-neutral).

``AnsweringMachineDetector`` is fed the callee's 16-bit PCM (any chunking) as it arrives on
voicedock's own media stream and decides, once, whether a person or a machine answered:

* a beep (a steady tone in 400-2000 Hz, at least ``beep_min_ms``) → ``machine``;
* speech going on for longer than ``greeting_ms`` without a pause of
  ``after_greeting_silence_ms`` → ``machine`` (a recorded greeting);
* a short greeting (at most ``greeting_ms``, "Hello?") followed by ``after_greeting_silence_ms``
  of silence (they wait for us to speak) → ``human``;
* nobody speaks for ``initial_silence_ms`` → ``unknown``; nothing clear by ``max_ms`` →
  ``machine`` if it talked longer than a greeting, else ``unknown``.

After a ``machine`` verdict it keeps listening for where a message can start
(``GreetingEnded``): the end of a beep, or, when no beep comes, ``end_silence_ms`` of silence
after the greeting; at the latest ``max_wait_ms`` after the verdict.

Speech is webrtcvad's (``vad.py``); the tone detector is a per-frame spectrum on a Hann window:
a frame is tonal when the three DFT bins around its strongest 400-2000 Hz bin hold at least
``tone_ratio`` of the frame's energy (a voice spreads its energy over harmonics and formants)
and the tone stays within one bin from frame to frame. Tonal frames never count as speech.
Times in the evidence are milliseconds of callee audio since the first frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np

from voicedock.domain.json import JsonObject
from voicedock.pipeline.audio import rms_dbfs
from voicedock.pipeline.hearing.vad import VadConfig, VoiceActivityDetector

AmdResult = Literal["human", "machine", "unknown"]
HUMAN: Final = "human"
MACHINE: Final = "machine"
UNKNOWN: Final = "unknown"
BEEP_BAND_HZ = (400.0, 2000.0)


@dataclass(frozen=True, slots=True)
class AmdConfig:
    sample_rate: int = 8000
    frame_ms: int = 20
    initial_silence_ms: int = 4000
    greeting_ms: int = 1800
    after_greeting_silence_ms: int = 1000
    max_ms: int = 6000
    beep_min_ms: int = 120
    tone_ratio: float = 0.8
    tone_min_dbfs: float = -35.0
    end_silence_ms: int = 1500
    max_wait_ms: int = 30_000
    speech_min_ms: int = 60  # shorter blips (a click, line noise) are not speech


@dataclass(frozen=True, slots=True)
class AmdDecision:
    result: AmdResult
    reason: str  # beep, long-greeting, short-greeting, initial-silence, timeout
    decided_at_ms: int
    initial_silence_ms: int | None  # until the callee first spoke (None: never)
    greeting_ms: int  # their speech, from its first to its last frame so far
    beep_at_ms: int | None = None

    def evidence(self) -> JsonObject:
        return {
            "reason": self.reason,
            "decided_at_ms": self.decided_at_ms,
            "initial_silence_ms": self.initial_silence_ms,
            "greeting_ms": self.greeting_ms,
            "beep_at_ms": self.beep_at_ms,
        }


@dataclass(frozen=True, slots=True)
class GreetingEnded:
    """A machine's greeting is over: a message recorded from now on is kept."""

    at_ms: int
    beep: bool  # ended by a beep (else by silence, or the wait's limit)
    beep_hz: float | None = None


AmdEvent = AmdDecision | GreetingEnded


@dataclass(slots=True)
class _Tone:
    hz: float
    started_ms: int
    frames: int = 1


@dataclass(slots=True)
class _State:
    now_ms: int = 0
    speech_run_ms: int = 0  # consecutive speech frames (debounce)
    first_speech_ms: int | None = None
    last_speech_ms: int | None = None  # end of the last speech frame
    tone: _Tone | None = None
    beep: _Tone | None = None  # the first tone long enough to be a beep
    decision: AmdDecision | None = None
    ended: bool = False
    events: list[AmdEvent] = field(default_factory=list)


class AnsweringMachineDetector:
    """Feed callee PCM with ``process``; it returns the events decided on it (see module)."""

    def __init__(self, config: AmdConfig | None = None, *, wait_for_greeting: bool = False) -> None:
        self.config = cfg = config or AmdConfig()
        self._vad = VoiceActivityDetector(VadConfig(sample_rate=cfg.sample_rate, frame_ms=20))
        self._wait_for_greeting = wait_for_greeting
        self._frame_samples = cfg.sample_rate * cfg.frame_ms // 1000
        self._window = np.hanning(self._frame_samples)
        freqs = np.fft.rfftfreq(self._frame_samples, 1 / cfg.sample_rate)
        self._freqs = freqs
        self._band = np.flatnonzero((freqs >= BEEP_BAND_HZ[0]) & (freqs <= BEEP_BAND_HZ[1]))
        self._pending = b""
        self._s = _State()

    @property
    def decision(self) -> AmdDecision | None:
        return self._s.decision

    @property
    def done(self) -> bool:
        """Nothing more to listen for."""
        s = self._s
        return s.decision is not None and (
            s.ended or not self._wait_for_greeting or s.decision.result != MACHINE
        )

    def process(self, pcm: bytes) -> list[AmdEvent]:
        size = self._frame_samples * 2
        data = self._pending + pcm
        whole = len(data) - len(data) % size
        self._pending = data[whole:]
        self._s.events = []
        for start in range(0, whole, size):
            if self.done:
                break
            self._frame(data[start : start + size])
        return self._s.events

    # -- one 20 ms frame ----------------------------------------------------------------------
    def _frame(self, frame: bytes) -> None:
        cfg, s = self.config, self._s
        start_ms = s.now_ms
        s.now_ms += cfg.frame_ms
        hz = self._tone_hz(frame)
        speech = hz is None and self._vad.is_speech(frame)
        self._follow_tone(hz, start_ms)
        if speech:
            s.speech_run_ms += cfg.frame_ms
            if s.speech_run_ms >= cfg.speech_min_ms:
                if s.first_speech_ms is None:
                    s.first_speech_ms = s.now_ms - s.speech_run_ms
                s.last_speech_ms = s.now_ms
        else:
            s.speech_run_ms = 0
        if s.decision is None:
            self._decide()
        elif not s.ended and s.decision.result == MACHINE and self._wait_for_greeting:
            self._await_greeting_end()

    def _tone_hz(self, frame: bytes) -> float | None:
        cfg = self.config
        if rms_dbfs(frame) < cfg.tone_min_dbfs:
            return None
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        power = np.abs(np.fft.rfft(samples * self._window)) ** 2
        total = float(power.sum())
        if total <= 0:
            return None
        peak = int(self._band[np.argmax(power[self._band])])
        around = float(power[max(peak - 1, 0) : peak + 2].sum())
        return float(self._freqs[peak]) if around / total >= cfg.tone_ratio else None

    def _follow_tone(self, hz: float | None, start_ms: int) -> None:
        cfg, s = self.config, self._s
        step = self._freqs[1]
        tone = s.tone
        if hz is not None and tone is not None and abs(hz - tone.hz) <= step * 1.01:
            tone.frames += 1
        elif hz is not None:
            s.tone = _Tone(hz, start_ms)
        else:
            s.tone = None
        current = s.tone
        long_enough = current is not None and current.frames * cfg.frame_ms >= cfg.beep_min_ms
        if long_enough and s.beep is None:
            s.beep = current
        beep_over = tone is not None and current is not tone and tone is s.beep
        if beep_over and self._wait_for_greeting and not s.ended:
            self._greeting_ended(beep=True)

    def _decide(self) -> None:
        cfg, s = self.config, self._s
        first, last = s.first_speech_ms, s.last_speech_ms
        greeting = 0 if first is None or last is None else last - first
        if s.beep is not None:
            self._set(MACHINE, "beep", greeting)
        elif first is None:
            if s.now_ms >= cfg.initial_silence_ms:
                self._set(UNKNOWN, "initial-silence", greeting)
        elif greeting > cfg.greeting_ms:
            self._set(MACHINE, "long-greeting", greeting)
        elif last is not None and s.now_ms - last >= cfg.after_greeting_silence_ms:
            self._set(HUMAN, "short-greeting", greeting)
        elif s.now_ms >= cfg.max_ms:
            self._set(MACHINE if greeting > cfg.greeting_ms else UNKNOWN, "timeout", greeting)

    def _set(self, result: AmdResult, reason: str, greeting: int) -> None:
        s = self._s
        beep_at = s.beep.started_ms if s.beep is not None else None
        s.decision = AmdDecision(result, reason, s.now_ms, s.first_speech_ms, greeting, beep_at)
        s.events.append(s.decision)

    def _await_greeting_end(self) -> None:
        cfg, s = self.config, self._s
        assert s.decision is not None
        if s.tone is not None and s.tone is s.beep:
            return  # the beep plays: wait for its end
        silent_since = s.last_speech_ms if s.last_speech_ms is not None else 0
        if (
            s.beep is None and s.now_ms - silent_since >= cfg.end_silence_ms
        ) or s.now_ms - s.decision.decided_at_ms >= cfg.max_wait_ms:
            self._greeting_ended(beep=False)

    def _greeting_ended(self, *, beep: bool) -> None:
        s = self._s
        s.ended = True
        if s.decision is None:  # a beep before any verdict: the verdict comes first
            self._set(MACHINE, "beep", 0)
        hz = s.beep.hz if beep and s.beep is not None else None
        s.events.append(GreetingEnded(s.now_ms, beep, hz))
