"""The far end's audio cut into utterances, for a wait before the dialogue hears it: the person
behind a call-screening assistant (``calls/live/call_screening.py``), a company's phone menu and
hold (``calls/live/phone_menu.py``).

``LineUtterances.feed`` takes the line's audio (16-bit PCM at ``sample_rate``, any chunking)
and returns the utterances it completed: speech, then ``end_ms`` of silence (or ``max_ms`` of
it as it stands), each with when it ended on the clock of the audio heard (``now_ms``). Speech
shorter than ``speech_min_ms`` (a click, a breath) is none. Between utterances it counts what
the line held instead: ``music_ms`` (sound that is not speech: hold music, a tone) and
``quiet_ms`` (under the VAD's level floor, -50 dBFS); ``quiet_for_ms`` is how long since the
last speech. The decision per 20 ms frame is a ``VoiceActivityDetector``'s: webrtcvad by
default, Silero (``silero=True``, where the model is installed), which hears less of music
as speech.
"""

from __future__ import annotations

from dataclasses import dataclass

from voicedock.pipeline.hearing import silero_vad
from voicedock.pipeline.hearing.vad import VadConfig, VoiceActivityDetector

FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class Utterance:
    pcm: bytes
    at_ms: int  # when it ended, in the audio heard since the first frame


class LineUtterances:
    def __init__(
        self,
        sample_rate: int,
        *,
        end_ms: int = 600,
        speech_min_ms: int = 200,
        max_ms: int = 15_000,
        silero: bool = False,
    ) -> None:
        engine = "silero" if silero and silero_vad.available() else "webrtc"
        config = VadConfig(sample_rate=sample_rate, frame_ms=FRAME_MS, engine=engine)
        self._vad = VoiceActivityDetector(config)
        self._frame_bytes = config.frame_bytes
        self._end_ms, self._speech_min_ms, self._max_ms = end_ms, speech_min_ms, max_ms
        self._pending = b""
        self._utterance: list[bytes] = []
        self._speech_ms = 0
        self._silence_ms = 0  # within the utterance under way
        self.now_ms = 0
        self.quiet_for_ms = 0  # since the last frame of speech
        self.music_ms = 0
        self.quiet_ms = 0

    @property
    def in_utterance(self) -> bool:
        return bool(self._utterance)

    def feed(self, pcm: bytes) -> list[Utterance]:
        """The line's audio; the utterances it completed."""
        data = self._pending + pcm
        whole = len(data) - len(data) % self._frame_bytes
        self._pending = data[whole:]
        done: list[Utterance] = []
        for start in range(0, whole, self._frame_bytes):
            heard = self._frame(data[start : start + self._frame_bytes])
            if heard is not None:
                done.append(heard)
        return done

    def _frame(self, frame: bytes) -> Utterance | None:
        self.now_ms += FRAME_MS
        if self._vad.is_speech(frame):
            self._utterance.append(frame)
            self._speech_ms += FRAME_MS
            self._silence_ms = self.quiet_for_ms = 0
        else:
            self.quiet_for_ms += FRAME_MS
            if self._utterance:
                self._utterance.append(frame)
                self._silence_ms += FRAME_MS
            elif not self._vad.loud:  # the level the VAD measured for its floor
                self.quiet_ms += FRAME_MS
            else:
                self.music_ms += FRAME_MS
        heard_ms = len(self._utterance) * FRAME_MS
        if not self._utterance or (self._silence_ms < self._end_ms and heard_ms < self._max_ms):
            return None
        speech_ms, pcm = self._speech_ms, b"".join(self._utterance)
        self._utterance, self._speech_ms, self._silence_ms = [], 0, 0
        return Utterance(pcm, self.now_ms) if speech_ms >= self._speech_min_ms else None
