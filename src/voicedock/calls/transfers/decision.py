"""The agent's spoken answer to a warm transfer briefing: "yes" accepts, "no" declines.

Two parts: ``decision_from_words`` (pure: a transcript in, a decision or ``None`` out) and
``listen_for_decision`` (the agent's media-leg frames → webrtcvad endpointing → the STT →
``decision_from_words``, until the first utterance that means one or the other). Anything
else the agent says is ignored: a wrong guess would hand the caller to someone who did not
agree, so an unclear or mixed answer ("no... yes") decides nothing and DTMF still can.

The STT is the node's offline Whisper. With the node's recognition pool (``[speech]
recognition_pool``, default on) the answer is transcribed there (``NodeTranscriber``): the
model the calls use (the operator's ``[speech]`` Whisper settings), as a transcription someone
waits for (``DUE``), bounded with the calls' work and counted in the wait admission control
reads (``pipeline/hearing/recognition.py``). Without the pool, ``transcribe_offline`` runs it on its
own.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Awaitable, Callable

from voicedock.calls.offline_speech import operator_stt
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import SttConfig
from voicedock.domain.audio import AudioFormat
from voicedock.media.codecs import decode
from voicedock.pbx.base import Decision
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.listener import Listener, UserUtterance
from voicedock.pipeline.hearing.recognition import NodeRecognition, PooledStt
from voicedock.pipeline.hearing.vad import VadConfig
from voicedock.pipeline.pools.worker_pool import Priority
from voicedock.pipeline.providers.base import Stt
from voicedock.pipeline.providers.registry import create_stt

Transcriber = Callable[[bytes, int], Awaitable[str]]  # 16-bit mono PCM, rate → text

_ACCEPT_WORDS = frozenset(
    {"yes", "yeah", "yep", "yup", "sure", "okay", "ok", "accept", "accepted", "alright"}
)
_ACCEPT_PHRASES = (
    ("put", "them", "through"),
    ("put", "him", "through"),
    ("put", "her", "through"),
    ("put", "it", "through"),
    ("connect", "them"),
    ("all", "right"),
)
_DECLINE_WORDS = frozenset({"no", "nope", "nah", "decline", "declined", "reject", "refuse"})
_DECLINE_PHRASES = (("not", "now"), ("can't", "take"), ("cannot", "take"))
# A negation next to a yes-word ("not okay", "I'm not sure") leaves the answer unclear.
_NEGATIONS = frozenset({"not", "don't", "can't", "cannot", "won't", "isn't"})
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")

# An answer is short: no caller-style turn limits, just the end of one or two words.
_ENDPOINTING = EndpointingConfig(
    min_speech_ms=100, end_silence_ms=500, silence_timeout_ms=None, max_duration_ms=None
)
_MAX_ANSWER_MS = 6000  # longer speech is not an answer to "yes or no"; skip transcribing it


def decision_from_words(text: str) -> Decision | None:
    """What ``text`` (a transcript) means: accept, decline, or ``None`` (unclear or both)."""
    words = _WORD.findall(text.lower().replace("o.k.", "ok").replace("’", "'"))
    accept = bool(_ACCEPT_WORDS.intersection(words)) or _has_phrase(words, _ACCEPT_PHRASES)
    decline = bool(_DECLINE_WORDS.intersection(words)) or _has_phrase(words, _DECLINE_PHRASES)
    if accept and (decline or _NEGATIONS.intersection(words)):
        return None
    if accept:
        return "accept"
    return "decline" if decline else None


def _has_phrase(words: list[str], phrases: tuple[tuple[str, ...], ...]) -> bool:
    for phrase in phrases:
        size = len(phrase)
        if any(tuple(words[i : i + size]) == phrase for i in range(len(words) - size + 1)):
            return True
    return False


async def listen_for_decision(
    frames: AsyncIterable[bytes], media_format: AudioFormat, transcribe: Transcriber
) -> Decision | None:
    """The first utterance in ``frames`` (wire format) that means a decision; ``None`` when
    the frames end first. Transcription errors propagate (the caller falls back to DTMF)."""
    rate = media_format.sample_rate
    listener = Listener(rate, vad=VadConfig(sample_rate=rate), endpointing=_ENDPOINTING)
    async for frame in frames:
        for event in listener.process(decode(media_format, frame).tobytes()):
            if not isinstance(event, UserUtterance):
                continue
            if len(event.pcm) > _MAX_ANSWER_MS * rate * 2 // 1000:
                continue
            decision = decision_from_words(await transcribe(event.pcm, rate))
            if decision is not None:
                return decision
    return None


async def transcribe_offline(pcm: bytes, sample_rate: int) -> str:
    """``pcm`` as text, from the offline STT (faster-whisper, the model shared per process)
    on its own: the node without a recognition pool."""
    stt = create_stt(SttConfig(provider="offline"))
    try:
        return await stt.transcribe(pcm, sample_rate)
    finally:
        await stt.aclose()


class NodeTranscriber:
    """A ``Transcriber`` through the node's recognition pool: the offline Whisper with the
    operator's settings (the model, device and threads the calls' transcriptions use), each
    answer a ``DUE`` job of the pool, or with ``priority`` ``AHEAD`` one that waits behind
    every transcription a call's caller waits for (a simulated caller's ears:
    ``calls/rehearsal/caller_speech.py``)."""

    def __init__(
        self,
        recognition: NodeRecognition,
        speech: SpeechSettings,
        create: Callable[[SttConfig], Stt] = create_stt,
        *,
        priority: Priority = Priority.DUE,
    ) -> None:
        self._recognition = recognition
        self._config = operator_stt("offline", speech)
        self._create = create
        self._priority = priority

    async def __call__(self, pcm: bytes, sample_rate: int) -> str:
        stt = self._recognition.speech_for(self._create(self._config))
        try:
            if self._priority is Priority.DUE or not isinstance(stt, PooledStt) or not pcm:
                return await stt.transcribe(pcm, sample_rate)
            return await stt.queue(pcm, sample_rate, "").future
        finally:
            await stt.aclose()
