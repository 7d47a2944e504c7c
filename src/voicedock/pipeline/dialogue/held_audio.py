"""The caller's audio held while the dialogue that is to hear it starts (a pipeline taking
over a failed speech-to-speech session, a squad's member the call was handed over to), then
heard by it frame by frame, so the caller need not repeat themself."""

from __future__ import annotations

from collections.abc import Callable

_FRAME_MS = 20  # the held audio is heard frame by frame
_HELD_MAX_S = 30.0  # at most this much is held (the latest)


class HeldAudio:
    def __init__(self, sample_rate: int) -> None:
        self._rate = sample_rate
        self._held = bytearray()

    def hold(self, pcm: bytes) -> None:
        """16-bit mono PCM at the call's rate, kept (the latest ``_HELD_MAX_S``)."""
        self._held += pcm
        del self._held[: max(0, len(self._held) - self._bytes(_HELD_MAX_S))]

    def replay(self, feed: Callable[[bytes], None], before: bytes = b"") -> None:
        """``before`` then what was held, fed frame by frame; nothing is held after."""
        heard = before + bytes(self._held)
        self._held.clear()
        step = self._bytes(_FRAME_MS / 1000)
        for start in range(0, len(heard), step):
            feed(heard[start : start + step])

    def _bytes(self, seconds: float) -> int:
        return int(seconds * self._rate) * 2
