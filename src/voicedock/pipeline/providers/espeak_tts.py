"""espeak-ng TTS: small, robotic, always-available fallback when Piper is not installed.

Runs the Debian `espeak-ng` binary per sentence (text on stdin, so no text is ever parsed
as an option) and resamples its 22.05 kHz output once to the call rate.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
import subprocess
from collections.abc import AsyncIterator, Sequence

from voicedock.domain.assistant_config import TtsConfig
from voicedock.domain.vocabulary import Pronunciation
from voicedock.pipeline.audio import resample_pcm16
from voicedock.pipeline.providers.base import (
    ProviderConfigError,
    ProviderResponseError,
    ProviderUnavailableError,
)
from voicedock.pipeline.providers.local_tts import LocalTts
from voicedock.pipeline.text import split_sentences

_RUN_TIMEOUT_S = 30.0  # one sentence; a hung espeak-ng never holds a pool worker for good


def parse_wav(data: bytes) -> tuple[bytes, int]:
    """RIFF/WAVE bytes → (16-bit mono PCM, sample rate).

    Tolerates the placeholder sizes espeak-ng writes when streaming to stdout.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    pos = 12
    rate = 0
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if fmt != 1 or channels != 1 or bits != 16:
                raise ValueError("only 16-bit mono PCM WAV is supported")
        elif chunk_id == b"data":
            if rate == 0:
                raise ValueError("WAV data before fmt chunk")
            end = len(data) if size == 0 or body + size > len(data) else body + size
            pcm = data[body:end]
            return pcm[: len(pcm) - len(pcm) % 2], rate
        pos = body + size + (size & 1)
    raise ValueError("WAV has no data chunk")


class EspeakTts(LocalTts):
    """`Tts` over the espeak-ng command line."""

    def __init__(
        self,
        *,
        sample_rate: int = 8000,
        voice: str = "en-us",
        words_per_minute: int = 165,
        executable: str | None = None,
        pronunciations: Sequence[Pronunciation] | None = None,
    ) -> None:
        exe = executable or shutil.which("espeak-ng")
        if exe is None:
            raise ProviderUnavailableError("espeak-ng is not installed (apt install espeak-ng)")
        if not voice.replace("-", "").replace("+", "").isalnum():
            raise ProviderConfigError("tts.voice must be an espeak-ng voice name")
        super().__init__(sample_rate, pronunciations, "alias")  # its phonemes are not IPA
        self._exe = exe
        self._voice = voice
        self._wpm = words_per_minute

    @classmethod
    def from_config(cls, config: TtsConfig) -> EspeakTts:
        wpm = config.words_per_minute
        return cls(
            sample_rate=config.sample_rate or 8000,
            voice=config.voice or "en-us",
            words_per_minute=165 if wpm is None else int(wpm),
            pronunciations=config.pronunciations,
        )

    @property
    def voice_identity(self) -> str:
        said = self._pronouncer.identity
        return f"espeak-ng|{self._exe}|{self._voice}|{self._wpm}|{self._rate}|{said}"

    def synthesize_sentence(self, sentence: str) -> bytes:
        """One sentence, blocking (the node's synthesis pool runs it in a worker thread)."""
        try:
            done = subprocess.run(  # noqa: S603 - our binary, the text on stdin
                self._command(),
                input=self._pronouncer.spoken(sentence).encode(),
                capture_output=True,
                timeout=_RUN_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProviderResponseError(f"espeak-ng failed: {type(exc).__name__}") from exc
        if done.returncode != 0:
            raise ProviderResponseError(f"espeak-ng exited with {done.returncode}")
        try:
            pcm, rate = parse_wav(done.stdout)
        except ValueError as exc:
            raise ProviderResponseError(f"espeak-ng output unreadable: {exc}") from exc
        return resample_pcm16(pcm, rate, self._rate)

    def _command(self) -> list[str]:
        return [self._exe, "--stdout", "-v", self._voice, "-s", str(self._wpm)]

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        for sentence in split_sentences(text):
            pcm, rate = await self._run(sentence)
            yield resample_pcm16(pcm, rate, self._rate)

    async def _run(self, sentence: str) -> tuple[bytes, int]:
        proc = await asyncio.create_subprocess_exec(
            *self._command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            out, _ = await proc.communicate(self._pronouncer.spoken(sentence).encode())
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            raise ProviderResponseError(f"espeak-ng exited with {proc.returncode}")
        try:
            return parse_wav(out)
        except ValueError as exc:
            raise ProviderResponseError(f"espeak-ng output unreadable: {exc}") from exc
