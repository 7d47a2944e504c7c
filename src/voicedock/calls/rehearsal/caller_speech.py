"""The simulated caller's voice and ears: what a script says, in the node's offline voice or a
local voice of ``GET /voices`` a step names (``<provider>:<voice>``, Piper or espeak-ng, looked
up in the node's list: nothing a tenant writes reaches a command line), and what the caller leg
hears, transcribed by the node's recognition pool when it has one (bounded with the calls'
transcriptions), else by the offline STT on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec

from voicedock.calls.offline_speech import operator_tts
from voicedock.calls.rehearsal.simulated_caller import Synthesizer, Transcriber
from voicedock.calls.transfers.decision import NodeTranscriber, transcribe_offline
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import SttConfig, TtsConfig
from voicedock.errors import ProviderError
from voicedock.pipeline.hearing.recognition import NodeRecognition
from voicedock.pipeline.pools.worker_pool import Priority
from voicedock.pipeline.providers.base import Stt, Tts
from voicedock.pipeline.providers.registry import create_stt, create_tts
from voicedock.pipeline.speaking.node_voices import node_voices


def caller_voice(
    speech: SpeechSettings, create: Callable[[TtsConfig], Tts] = create_tts
) -> Synthesizer:
    """The simulated caller's ``Synthesizer``: text (and a voice id) to 16-bit PCM."""

    async def synthesize(text: str, voice: str | None) -> tuple[bytes, int]:
        config = operator_tts("offline", speech)
        if voice is not None:
            provider, _, name = voice.partition(":")
            known = await asyncio.to_thread(node_voices, speech)
            if not any(v.provider == provider and v.voice == name and not v.cloud for v in known):
                raise ProviderError(f"{voice!r} is none of this node's local voices")
            config = msgspec.structs.replace(operator_tts(provider, speech), voice=name)
        tts = create(config)
        try:
            pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
        finally:
            await tts.aclose()
        return pcm, tts.sample_rate

    return synthesize


def caller_ears(
    recognition: NodeRecognition | None,
    speech: SpeechSettings,
    create: Callable[[SttConfig], Stt] = create_stt,
) -> Transcriber:
    """The simulated caller's ``Transcriber``. In the node's pool its transcriptions are
    ``AHEAD``: nobody waits for them while the test call goes on (the run reads them when the
    call is over), so every call's final transcripts, the test calls' assistants' included, go
    first; at ``DUE`` twenty callers hearing their greetings at once queued each assistant's
    transcription of the caller's answer behind twenty others."""
    if recognition is None:
        return transcribe_offline
    return NodeTranscriber(recognition, speech, create, priority=Priority.AHEAD)


__all__ = ["caller_ears", "caller_voice"]
