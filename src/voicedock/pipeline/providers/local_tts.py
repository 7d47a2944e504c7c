"""What the TTS engines that run on this node (Piper, espeak-ng) share: audio at the call's
rate, and the voice's pronunciations applied to each sentence before it is synthesized. Both
are ``SentenceTts`` (``pipeline/providers/base.py``) and hold nothing to close."""

from __future__ import annotations

from collections.abc import Sequence

from voicedock.domain.vocabulary import Pronunciation
from voicedock.pipeline.providers.pronunciation import PhonemeStyle, Pronouncer


class LocalTts:
    """A node's own TTS; output is 16-bit mono PCM at ``sample_rate`` (the call rate)."""

    def __init__(
        self,
        sample_rate: int,
        pronunciations: Sequence[Pronunciation] | None,
        style: PhonemeStyle,
    ) -> None:
        self._rate = sample_rate
        self._pronouncer = Pronouncer(pronunciations, style)

    @property
    def sample_rate(self) -> int:
        return self._rate

    async def aclose(self) -> None:
        return None
