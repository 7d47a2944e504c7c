"""Caller-side processor: audio in → VAD → endpointing → whole utterances.

Synchronous and allocation-light, because it runs for every 20 ms frame: one webrtcvad call
per frame, one state-machine step, and a byte append while the caller may be speaking. A
short pre-roll is kept so the first syllable, heard before the VAD was sure, is not clipped.
Audio the echo gate (``pipeline/hearing/echo.py``) finds to be the assistant's own voice coming back
is not speech to the endpointer: an echoing line does not barge in on the assistant.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from voicedock.pipeline.frames import Frame, UserSpeechStopped
from voicedock.pipeline.hearing.echo import EchoGate, EchoGateConfig
from voicedock.pipeline.hearing.endpointing import Endpointer, EndpointingConfig
from voicedock.pipeline.hearing.vad import VadConfig, VoiceActivityDetector

_TAIL_KEEP_MS = 150  # silence kept after the last speech frame, so words are not cut


@dataclass(slots=True, frozen=True)
class UserUtterance(Frame):
    """A finished caller turn with its audio (pre-roll included, trailing silence trimmed)."""

    pcm: bytes
    sample_rate: int
    stopped: UserSpeechStopped
    # How long before the end of the audio fed so far (the frame that decided the turn) its
    # first sample came, in milliseconds of audio: ``pcm`` placed on the wall clock.
    started_before_ms: int = 0


class Listener:
    def __init__(
        self,
        sample_rate: int = 8000,
        *,
        vad: VadConfig | None = None,
        endpointing: EndpointingConfig | None = None,
        pre_roll_ms: int = 200,
        echo: EchoGateConfig | None = None,
    ) -> None:
        vad_cfg = vad or VadConfig(sample_rate=sample_rate)
        if vad_cfg.sample_rate != sample_rate:
            raise ValueError("vad.sample_rate must equal the call sample rate")
        ep_cfg = endpointing or EndpointingConfig(frame_ms=vad_cfg.frame_ms)
        if ep_cfg.frame_ms != vad_cfg.frame_ms:
            raise ValueError("endpointing.frame_ms must equal vad.frame_ms")
        self.sample_rate = sample_rate
        self.vad = VoiceActivityDetector(vad_cfg)
        self.endpointer = Endpointer(ep_cfg)
        # The assistant's own audio coming back is not caller speech (``play`` what is sent).
        self.echo = EchoGate(sample_rate, echo)
        self._bytes_per_ms = sample_rate * 2 // 1000
        self._pre_roll: deque[bytes] = deque(maxlen=max(1, pre_roll_ms // vad_cfg.frame_ms))
        self._utterance: bytearray | None = None
        self._utterance_start = 0  # bytes of audio fed before the utterance's first byte
        self._fed = 0  # bytes of audio fed so far

    def process(self, pcm: bytes, assistant_audible: bool = False) -> list[Frame]:
        """Feed caller audio of any length; returns the decisions it caused, in order."""
        out: list[Frame] = []
        endpointer = self.endpointer
        decisions = self.vad.process(pcm)
        self.echo.hear(pcm)
        if self.echo.active and any(decisions) and self.echo.is_echo():
            decisions = [False] * len(decisions)
        for is_speech in decisions:
            out.extend(endpointer.process(is_speech, assistant_audible))
        if self._utterance is None and endpointer.user_maybe_speaking:
            self._utterance = bytearray().join(self._pre_roll)
            self._utterance_start = self._fed - len(self._utterance)
        if self._utterance is not None:
            self._utterance += pcm
        self._pre_roll.append(pcm)
        self._fed += len(pcm)
        for i, frame in enumerate(out):
            if isinstance(frame, UserSpeechStopped):
                out[i] = self._finish(frame)
        if self._utterance is not None and not endpointer.user_maybe_speaking:
            self._utterance = None  # a blip too short to be a turn
        return out

    def heard_so_far(self) -> bytes:
        """A copy of the audio of the caller turn in progress (pre-roll included); empty
        unless a turn has started. For transcribing it while the caller speaks."""
        if self._utterance is None or not self.endpointer.user_speaking:
            return b""
        return bytes(self._utterance)

    def take_unfinished(self) -> bytes:
        """The audio of a caller turn still in progress (pre-roll included), taken away; empty
        unless a turn has started. For a call that ends while the caller speaks."""
        if self._utterance is None or not self.endpointer.user_speaking:
            return b""
        audio, self._utterance = bytes(self._utterance), None
        return audio

    def _finish(self, stopped: UserSpeechStopped) -> UserUtterance:
        audio = self._utterance or bytearray()
        self._utterance = None
        trailing_ms = max(0, stopped.decided_at_ms - stopped.ended_at_ms - _TAIL_KEEP_MS)
        cut = min(len(audio), trailing_ms * self._bytes_per_ms)
        before_ms = (self._fed - self._utterance_start) // self._bytes_per_ms
        return UserUtterance(bytes(audio[: len(audio) - cut]), self.sample_rate, stopped, before_ms)
