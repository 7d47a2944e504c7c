"""A call's first message, synthesized while it rings (``[speech] presynthesis``, default on):
the engine's ``Presynthesizer`` (``calls/engine/presynthesizer.py``).

The engine tells it of each call whose assistant is known before the answer (an outbound call as
it is originated, an inbound call once its assistant is chosen). The call's first message is
then synthesized through the node's synthesis pool and cache (``pipeline/speaking/synthesis.py``),
by the call's TTS alone (no STT or LLM is made before the answer), in a task that holds the prepared
speech (``Presynthesis`` of the node's synthesis) until the call's conversation ends, the call
ends unanswered or the ring time is over: the greeting's first sentence is usually ready when
the media leg is up. A call that opens in one of the assistant's languages
(``calls/live/opening_language.py``) greets in that language's words and voice: nothing is
synthesized ahead for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from voicedock.aio import Supervisor
from voicedock.calls.live.opening_language import opens_in_listed
from voicedock.calls.runner.call_speech import CallSpeech
from voicedock.domain.ids import mask_call_id
from voicedock.domain.records import Call
from voicedock.errors import ProviderError
from voicedock.logs import describe
from voicedock.pbx.base import MediaPbx, Pbx
from voicedock.pipeline.speaking.synthesis import NodeSynthesis

log = logging.getLogger("voicedock.calls")

# A first message synthesized ahead is kept this long past the ring time, for an answer late
# to reach us; then what is not synthesized yet is dropped (a cached sentence stays cached).
PRESYNTHESIS_GRACE_S = 30.0


class Presynthesis:
    def __init__(self, synthesis: NodeSynthesis, speech: CallSpeech, pbx: Pbx) -> None:
        self._synthesis = synthesis
        self._speech = speech
        self._media = isinstance(pbx, MediaPbx)  # a PBX without media never plays it
        self._tasks = Supervisor("presynthesis", log)
        self._closed = False
        # Calls whose first message is being prepared: set to release it.
        self._prepared: dict[str, asyncio.Event] = {}

    async def start(self) -> None:
        await self._tasks.start()

    def prepare(self, call: Call, ring_seconds: float) -> None:
        """Synthesize ``call``'s first message while it rings (see the module's doc)."""
        text = call.assistant_config.first_message
        if (
            not self._media
            or self._closed
            or not self._tasks.running
            or not isinstance(text, str)
            or not text.strip()
            or call.id in self._prepared
        ):
            return
        release = self._prepared[call.id] = asyncio.Event()
        hold = max(0.0, ring_seconds) + PRESYNTHESIS_GRACE_S
        if self._tasks.spawn(self._presynthesize(call, text, release, hold)) is None:
            self._prepared.pop(call.id, None)

    def drop(self, call_id: str) -> None:
        """The call ended (or will not ring): its prepared speech is not needed."""
        release = self._prepared.get(call_id)
        if release is not None:
            release.set()

    def drop_all(self) -> None:
        """Every call's prepared speech: the PBX lost every call."""
        for release in self._prepared.values():
            release.set()

    def stop_preparing(self) -> None:
        """Voicedock is shutting down: no call's speech is prepared any more."""
        self._closed = True

    async def aclose(self) -> None:
        """Release what is prepared and wait for its tasks (idempotent)."""
        self.stop_preparing()
        self.drop_all()
        try:
            await self._tasks.drain()
        finally:
            await self._tasks.aclose()

    async def _presynthesize(
        self, call: Call, text: str, release: asyncio.Event, hold: float
    ) -> None:
        try:
            opening = await self._speech.opening_language(call)
            if opens_in_listed(call.assistant_config, opening):
                return  # its greeting is that language's, in that language's voice
            try:
                tts = await self._speech.voice(await self._speech.keyed_config(call))
            except ProviderError as exc:  # the call reports it once answered
                why = describe(exc)
                log.info("call %s: nothing synthesized ahead: %s", mask_call_id(call.id), why)
                return
            try:
                held = self._synthesis.prepare(tts, call.organization_id, text)
                try:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(hold):
                            await release.wait()
                finally:
                    held.release()
            finally:
                with contextlib.suppress(Exception):
                    await tts.aclose()
        finally:
            if self._prepared.get(call.id) is release:
                del self._prepared[call.id]
