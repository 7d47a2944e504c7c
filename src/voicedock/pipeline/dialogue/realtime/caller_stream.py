"""The caller's audio to a speech-to-speech provider.

``feed`` runs once per 20 ms frame (cheap, synchronous): the frame waits in a bounded queue
(5 s of audio), and when the provider is behind the oldest frame is dropped (old audio is
worth least). ``run``, a task of the dialogue, converts each frame from the call's rate to the
provider's (``pipeline/audio.py`` ``PcmStream``) and pushes it, in order.
"""

from __future__ import annotations

import asyncio

from voicedock.pipeline.audio import PcmStream
from voicedock.pipeline.providers.realtime import RealtimeConversation

_INBOUND_FRAMES = 250  # caller audio waiting for the provider (5 s of 20 ms frames)


class CallerStream:
    def __init__(self, call_rate: int, provider_rate: int) -> None:
        self._frames: asyncio.Queue[bytes] = asyncio.Queue(_INBOUND_FRAMES)
        self._pcm = PcmStream(call_rate, provider_rate)

    def feed(self, pcm: bytes) -> None:
        """A frame of the caller's audio (16-bit mono PCM at the call's rate)."""
        if self._frames.full():  # the provider is behind: old audio is worth least
            self._frames.get_nowait()
        self._frames.put_nowait(pcm)

    async def run(self, conv: RealtimeConversation) -> None:
        while True:
            await conv.push_audio(self._pcm.convert(await self._frames.get()))
