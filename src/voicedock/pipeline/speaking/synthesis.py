"""Speech synthesized once per node and ahead of time: the synthesis pool and cache together.

``NodeSynthesis`` (one per process, owned by the call runner) serves every call's offline TTS
(``SentenceTts``) sentence by sentence: a sentence already synthesized for the organization in
the same voice comes from the ``SynthesisCache``; one being synthesized is awaited, not
synthesized again beside itself; anything else becomes a job in the node's synthesis
``WorkerPool`` (``pipeline/pools/worker_pool.py``). What a call speaks goes through
``speech_for(tts, organization)``, a ``Tts`` whose sentences are ``DUE``; ``prepare`` starts a
text's sentences ``AHEAD`` (the first message while the call rings) and returns a
``Presynthesis``: while it is held, the sentences are kept under way; released (the call
answered and spoke, or ended unanswered), a sentence nobody else waits for and not started yet
is dropped, so a call that never answers costs nothing more. When the pool's queue is full
(``PoolFull``) the rest of the text is not prepared: it is synthesized once a caller waits for
it, as without synthesis ahead.

A voice preview (``speech_for(tts, organization, preview=True)``) is nobody's call: its
sentences are ``SPARE`` work, done while the pool has nothing else to do (one at a time, never
before a call's sentence, due or ahead: ``pipeline/pools/worker_pool.py``), refused with
``PoolFull`` when the pool's ``max_spare`` previews' sentences wait already. A preview reads
the cache (a greeting previewed is the greeting's audio) but never fills it: what it
synthesizes is kept in a small cache of its own (``preview_cache``), so previews never evict a
call's sentences. A preview's sentence that a call then waits for (or prepares ahead) becomes
that call's: it is promoted, and its audio kept in the calls' cache; a call's sentence a
preview waits for is shared as it is (it is not promoted for the preview).

Cloud TTS (anything not a ``SentenceTts``) is neither cached nor pooled: its audio is made
with an organization's key and may differ from one request to the next; its own ``synthesize``
is used as is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

from voicedock.pipeline.pools.synthesis_cache import SynthesisCache, SynthesisKey
from voicedock.pipeline.pools.worker_pool import Job, PoolFull, Priority, WorkerPool
from voicedock.pipeline.providers.base import SentenceTts, Tts
from voicedock.pipeline.text import split_sentences

log = logging.getLogger("voicedock.pipeline")


PREVIEW_CACHE_SHARE = 16  # the previews' own cache: this fraction of the calls' cache


@dataclass(slots=True)
class _Pending:
    job: Job[bytes]
    interest: int = 0  # callers and presyntheses waiting for it
    call: bool = True  # a call's sentence (False: only previews asked for it so far)


class NodeSynthesis:
    def __init__(
        self, pool: WorkerPool, cache: SynthesisCache, preview_cache: SynthesisCache | None = None
    ) -> None:
        """``preview_cache``: where previews keep their audio (default: a cache of a
        ``PREVIEW_CACHE_SHARE``-th of ``cache``'s bound)."""
        self.pool = pool
        self.cache = cache
        if preview_cache is None:
            preview_cache = SynthesisCache(cache.max_bytes // PREVIEW_CACHE_SHARE)
        self.preview_cache = preview_cache
        self._pending: dict[SynthesisKey, _Pending] = {}
        self.synthesized = 0  # sentences the pool synthesized (tests, metrics)
        self.skipped_ahead = 0  # texts not (fully) prepared ahead: the pool's queue was full
        self._full = False  # the last preparation found the queue full (logged once a spell)

    def speech_for(self, tts: Tts, organization: str, *, preview: bool = False) -> Tts:
        """The call's TTS, through the node's cache and pool when it is a local engine;
        ``preview``: a voice preview's, with spare capacity only (its ``synthesize`` raises
        ``PoolFull`` when too many previews' sentences wait already)."""
        if isinstance(tts, SentenceTts):
            return CachedTts(self, tts, organization, preview=preview)
        return tts

    def prepare(self, tts: Tts, organization: str, text: str) -> Presynthesis:
        """Start synthesizing ``text`` ahead of time (nothing for a cloud TTS)."""
        held = Presynthesis(self)
        if not isinstance(tts, SentenceTts):
            return held
        for sentence in split_sentences(text):
            key = SynthesisKey(organization, tts.voice_identity, sentence)
            if self._cached(key) is not None:
                continue
            try:
                pending = self._joined(key, Priority.AHEAD) or self._start(tts, key, Priority.AHEAD)
            except PoolFull:
                self.skipped_ahead += 1
                if not self._full:
                    self._full = True
                    log.warning(
                        "synthesis queue full (%d waiting, [speech] synthesis_queue): "
                        "greetings are synthesized after the answer until it drains",
                        self.pool.waiting,
                    )
                return held
            pending.interest += 1
            held.entries.append((key, pending))
        self._full = False
        return held

    async def sentence(
        self, tts: SentenceTts, organization: str, sentence: str, *, preview: bool = False
    ) -> bytes:
        """One sentence a caller waits for (``preview``: a voice preview, ``SPARE`` work)."""
        key = SynthesisKey(organization, tts.voice_identity, sentence)
        if preview:  # shares what is under way as it is: never promotes it
            audio = self.cache.get(key)
            if audio is None:
                audio = self.preview_cache.get(key)
            if audio is not None:
                return audio
            pending = self._pending.get(key) or self._start(tts, key, Priority.SPARE, call=False)
        else:
            audio = self._cached(key)
            if audio is not None:
                return audio
            pending = self._joined(key, Priority.DUE) or self._start(tts, key, Priority.DUE)
        pending.interest += 1
        try:
            return await asyncio.shield(pending.job.future)
        finally:
            self._release(key, pending)

    def ready(self, tts: Tts, organization: str, text: str) -> bool:
        """Every sentence of ``text`` is in the cache (tests, the benchmark)."""
        if not isinstance(tts, SentenceTts):
            return False
        voice = tts.voice_identity
        return all(
            SynthesisKey(organization, voice, s) in self.cache for s in split_sentences(text)
        )

    def _cached(self, key: SynthesisKey) -> bytes | None:
        """A call's sentence from the cache; one a preview synthesized becomes the call's
        (moved to the calls' cache)."""
        audio = self.cache.get(key)
        if audio is None:
            audio = self.preview_cache.pop(key)
            if audio is not None:
                self.cache.put(key, audio)
        return audio

    def _joined(self, key: SynthesisKey, priority: Priority) -> _Pending | None:
        """The sentence under way, now a call's (promoted to ``priority``), if it is."""
        pending = self._pending.get(key)
        if pending is not None:
            pending.call = True
            pending.job.promote(priority)
        return pending

    def _start(
        self, tts: SentenceTts, key: SynthesisKey, priority: Priority, *, call: bool = True
    ) -> _Pending:
        job = self.pool.submit(partial(tts.synthesize_sentence, key.text), priority)
        pending = self._pending[key] = _Pending(job, call=call)
        job.future.add_done_callback(partial(self._done, key, pending))
        return pending

    def _done(self, key: SynthesisKey, pending: _Pending, future: asyncio.Future[bytes]) -> None:
        if self._pending.get(key) is pending:
            del self._pending[key]
        if future.cancelled():
            return
        if future.exception() is None:  # an error reaches whoever waits (none: dropped)
            self.synthesized += 1
            (self.cache if pending.call else self.preview_cache).put(key, future.result())

    def _release(self, key: SynthesisKey, pending: _Pending) -> None:
        pending.interest -= 1
        if pending.interest <= 0 and not pending.job.started:
            pending.job.cancel()  # nobody waits for it any more
            if self._pending.get(key) is pending:
                del self._pending[key]


@dataclass(slots=True)
class Presynthesis:
    """A text being synthesized ahead of time; ``release`` once it is no longer needed
    ahead (idempotent)."""

    _node: NodeSynthesis
    entries: list[tuple[SynthesisKey, _Pending]] = field(default_factory=list)

    def release(self) -> None:
        entries, self.entries = self.entries, []
        for key, pending in entries:
            self._node._release(key, pending)


class CachedTts:
    """A call's (or a preview's) local TTS through the node's cache and pool (a ``Tts``)."""

    def __init__(
        self, node: NodeSynthesis, tts: SentenceTts, organization: str, *, preview: bool = False
    ) -> None:
        self._node = node
        self.inner = tts
        self._organization = organization
        self._preview = preview

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        for sentence in split_sentences(text):
            yield await self._node.sentence(
                self.inner, self._organization, sentence, preview=self._preview
            )

    async def aclose(self) -> None:
        await self.inner.aclose()
