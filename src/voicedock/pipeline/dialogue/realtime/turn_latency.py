"""Per-turn latency on a speech-to-speech call: the same ``TurnLatency`` as a turn-engine call.

A turn starts when the provider's server VAD decides the caller is done (``decided``).
``endpointing_ms`` is the time from the caller's last voiced frame (our own VAD on the caller's
audio, ``heard``) to that decision, ``tts_first_audio_ms`` the model's first audio delta and
``first_frame_sent_ms`` its first frame sent to the caller, both from the decision.
``stt_final_ms`` and ``llm_first_token_ms`` stay None: the provider has no separate STT or LLM
step to time. A turn is in ``latencies`` once the model's audio answers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.frames import TurnLatency
from voicedock.pipeline.hearing.vad import SUPPORTED_RATES, VadConfig, VoiceActivityDetector
from voicedock.pipeline.speaking.output import PlaybackHandle


@dataclass(slots=True)
class OpenTurn:
    """A caller's turn the model has not answered with a frame sent yet."""

    decided_at: float  # the server VAD's decision (the timer's clock)
    latency: TurnLatency


class TurnTimer:
    def __init__(self, config: ConversationConfig, clock: Callable[[], float]) -> None:
        """``clock``: monotonic seconds."""
        self.latencies: list[TurnLatency] = []  # one per caller turn the model answered
        self._clock = clock
        self._vad = _caller_vad(config)
        self._voiced_at: float | None = None  # the caller's last voiced frame
        self._open: OpenTurn | None = None

    def heard(self, pcm: bytes) -> None:
        """Caller audio at the call's rate: when it was last voiced."""
        if self._vad is not None and any(self._vad.process(pcm)):
            self._voiced_at = self._clock()

    def decided(self, early_cut_offs: int = 0) -> None:
        """The server VAD ended the caller's turn: the model's answer is timed from now;
        ``early_cut_offs``: the caller's early cut-offs since the last turn was decided."""
        now = self._clock()
        voiced_at, self._voiced_at = self._voiced_at, None
        endpointing = 0.0 if voiced_at is None else max(0.0, (now - voiced_at) * 1000)
        latency = TurnLatency(endpointing_ms=round(endpointing, 1), early_cut_offs=early_cut_offs)
        self._open = OpenTurn(now, latency)

    def answering(self) -> OpenTurn | None:
        """The model's audio arrived: the turn it answers (None: none is open), its first
        audio timed."""
        turn = self._open
        if turn is not None and turn.latency.tts_first_audio_ms is None:
            turn.latency.tts_first_audio_ms = self._ms_since(turn.decided_at)
            self.latencies.append(turn.latency)
        return turn

    def answered(self) -> None:
        """The model's first audio answering the open turn is queued for the caller."""
        self._open = None

    async def first_frame_sent(self, turn: OpenTurn, handle: PlaybackHandle) -> None:
        """Time ``turn``'s first frame, queued as ``handle``, once it is sent."""
        await handle.started()  # never, if cut before it was sent: stays None
        turn.latency.first_frame_sent_ms = self._ms_since(turn.decided_at)

    def _ms_since(self, then: float) -> float:
        return round((self._clock() - then) * 1000, 1)


def _caller_vad(config: ConversationConfig) -> VoiceActivityDetector | None:
    """Our own VAD on the caller's audio, only to time the provider's endpointing."""
    if config.vad is not None:
        return VoiceActivityDetector(config.vad)
    if config.sample_rate not in SUPPORTED_RATES:
        return None
    return VoiceActivityDetector(VadConfig(sample_rate=config.sample_rate))
