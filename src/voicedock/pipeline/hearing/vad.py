"""Voice activity detection on 10/20/30 ms frames: webrtcvad, or Silero VAD by choice.

webrtcvad only accepts exact 10, 20 or 30 ms frames at 8/16/32/48 kHz. `VoiceActivityDetector`
re-slices whatever chunk size the media layer delivers into those frames and returns one
speech/non-speech decision per frame. An optional energy floor keeps faint line noise, which
aggressive codecs sometimes let through, from counting as speech.

The engine is the operator's (``[speech.vad] engine``): ``webrtc`` (the default: a GMM, some
microseconds per frame) or ``silero`` (a small neural network, ``silero_vad.py``: better in
noise, about a hundred times the CPU; ``bench/turn_taking.py`` measures both). Silero VAD
needs 8 or 16 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass

import webrtcvad

from voicedock.pipeline.audio import FULL_SCALE, energy
from voicedock.pipeline.hearing.silero_vad import SileroVad

SUPPORTED_RATES = (8000, 16000, 32000, 48000)
SUPPORTED_FRAME_MS = (10, 20, 30)
VAD_ENGINES = ("webrtc", "silero")
SILERO_RATES = (8000, 16000)


@dataclass(slots=True, frozen=True)
class VadConfig:
    sample_rate: int = 8000
    frame_ms: int = 20
    aggressiveness: int = 2  # 0 (permissive) … 3 (strict)
    min_level_dbfs: float | None = -50.0  # None disables the energy floor
    engine: str = "webrtc"  # one of VAD_ENGINES
    threshold: float = 0.5  # silero: a window's speech probability that starts speech

    def __post_init__(self) -> None:
        if self.sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"vad.sample_rate must be one of {SUPPORTED_RATES}")
        if self.frame_ms not in SUPPORTED_FRAME_MS:
            raise ValueError(f"vad.frame_ms must be one of {SUPPORTED_FRAME_MS}")
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError("vad.aggressiveness must be between 0 and 3")
        if self.engine not in VAD_ENGINES:
            raise ValueError(f"vad.engine must be one of {', '.join(VAD_ENGINES)}")
        if self.engine == "silero" and self.sample_rate not in SILERO_RATES:
            raise ValueError(f"vad.engine silero needs a sample rate in {SILERO_RATES}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("vad.threshold must lie between 0 and 1")

    @property
    def frame_bytes(self) -> int:
        return self.sample_rate * self.frame_ms // 1000 * 2


class VoiceActivityDetector:
    """Feed PCM of any length; get one decision per complete VAD frame."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        cfg = self.config
        self._silero = SileroVad(cfg.sample_rate, cfg.threshold) if cfg.engine == "silero" else None
        self._vad = webrtcvad.Vad(cfg.aggressiveness)
        self._pending = b""
        self.loud = True  # the last frame decided was at or over the level floor
        # The level floor as a frame's energy (sum of squared samples): the same decision as
        # ``rms_dbfs(frame) >= min_level_dbfs``, without the logarithm on every frame.
        self._floor_energy = (
            None
            if cfg.min_level_dbfs is None
            else 10.0 ** (cfg.min_level_dbfs / 10.0) * FULL_SCALE**2 * (cfg.frame_bytes // 2)
        )

    def is_speech(self, frame: bytes) -> bool:
        """Decide one exact-size frame."""
        cfg = self.config
        if len(frame) != cfg.frame_bytes:
            raise ValueError(f"VAD frame must be {cfg.frame_bytes} bytes, got {len(frame)}")
        self.loud = loud = self._floor_energy is None or energy(frame) >= self._floor_energy
        if self._silero is not None:  # every frame, so the model's state follows the audio
            return self._silero.is_speech(frame) and loud
        return loud and bool(self._vad.is_speech(frame, cfg.sample_rate))

    def process(self, pcm: bytes) -> list[bool]:
        """Split `pcm` (plus any remainder of the previous call) into frames and decide each."""
        size = self.config.frame_bytes
        if not self._pending and len(pcm) == size:  # the common 20 ms case: no copying
            return [self.is_speech(pcm)]
        data = self._pending + pcm
        whole = len(data) - len(data) % size
        self._pending = data[whole:]
        return [self.is_speech(data[i : i + size]) for i in range(0, whole, size)]

    def reset(self) -> None:
        self._pending = b""
        if self._silero is not None:
            self._silero.reset()
