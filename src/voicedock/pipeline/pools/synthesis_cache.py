"""The node's synthesis cache: finished sentence audio by who may hear it, voice and text.

A key is ``SynthesisKey(scope, voice, text)``: ``scope`` is the organization whose call asked
for it (audio is never shared across organizations: a cache hit is faster than a synthesis,
so a shared entry would tell one organization what another had said), ``voice`` the engine's
own identity (engine, voice, settings and output sample rate: ``SentenceTts.voice_identity``),
``text`` the sentence. Bounded by the bytes of audio it holds: the least recently used
sentences go first; a sentence larger than the whole bound is not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SynthesisKey:
    scope: str  # the organization
    voice: str  # engine, voice, settings, sample rate
    text: str  # one sentence


class SynthesisCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, max_bytes)
        self._entries: OrderedDict[SynthesisKey, bytes] = OrderedDict()
        self.size = 0  # bytes of audio held
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: SynthesisKey) -> bool:
        return key in self._entries

    def get(self, key: SynthesisKey) -> bytes | None:
        audio = self._entries.get(key)
        if audio is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return audio

    def pop(self, key: SynthesisKey) -> bytes | None:
        """Take the sentence out (None: not held); not counted as a hit or a miss."""
        audio = self._entries.pop(key, None)
        if audio is not None:
            self.size -= len(audio)
        return audio

    def put(self, key: SynthesisKey, audio: bytes) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old)
        if len(audio) > self.max_bytes:
            return
        while self._entries and self.size + len(audio) > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted)
        self._entries[key] = audio
        self.size += len(audio)

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0
