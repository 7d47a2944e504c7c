"""When the words a redaction plan hid were said: the stretches of a call silenced in its
recording (``CallTaps.silence_recording``).

A caller's message the plan changed keeps the audio it was transcribed from (``TranscriptEntry
.audio``). At the call's end the recognizer, when it tells word times (``WordTimedStt``:
offline Whisper), hears that audio again with each word's time; the plan's redactor reads those
words, and only the words a placeholder stands for are silenced, so the rest of the sentence is
still heard: from a short margin before the first (Whisper's word edges are some tens of
milliseconds off) up to where the next word starts (the last word's end is often placed early:
its tail, or the audio's end after the last word said, is silenced with it). Those times are
counted in the caller's audio as the dialogue heard it, and the recording finds them there frame
by frame (``media/heard_timeline.py``): a stalled event loop, late frames, filled gaps move the
file's seconds away from the clock's, not the words.

Whatever gives no such word (an engine without word times, one that failed or took too long,
words that read differently the second time so that the redactor finds nothing in them, an
assistant's message, merged turns) falls back to the whole message silenced, half a second
either side: nothing the transcript hides is left in the recording for lack of times.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from voicedock.domain.redaction import Redactor
from voicedock.errors import ProviderError
from voicedock.pipeline.frames import HeardAudio, TranscriptEntry
from voicedock.pipeline.providers.base import SpokenWord, Stt, WordTimedStt

log = logging.getLogger("voicedock.calls")


@dataclass(frozen=True, slots=True)
class Stretch:
    """A stretch of the call to silence, ``start`` to ``end`` (UNIX times); a hidden word's is
    counted back in the caller's audio from when the frame that ended its turn came
    (``counted_from``), where the recording finds it exactly (``media/heard_timeline.py``); a
    whole message's (None) is placed by the clock."""

    start: float
    end: float
    counted_from: float | None = None


MESSAGE_MARGIN_S = 0.5  # a whole message: the edges of a turn's audio
WORD_MARGIN_S = 0.15  # a word: the alignment's error at its edges


async def redacted_stretches(
    transcript: Sequence[TranscriptEntry],
    stt: Stt | None,
    redactor: Redactor | None,
    *,
    timeout_s: float,
) -> list[Stretch]:
    """The stretches of the call to silence for the messages a redaction plan changed: the
    hidden words' where ``stt`` tells word times, else the whole message's. ``timeout_s``
    bounds the alignment of all of them together (what is left then: whole messages)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    stretches: list[Stretch] = []
    for entry in transcript:
        if not entry.redacted:
            continue
        words: list[Stretch] = []
        if entry.audio is not None and redactor is not None and isinstance(stt, WordTimedStt):
            words = await _hidden_words(entry, entry.audio, stt, redactor, deadline)
        if words:
            stretches.extend(words)
        else:
            stretches.append(
                Stretch(entry.started_at - MESSAGE_MARGIN_S, entry.ended_at + MESSAGE_MARGIN_S)
            )
        entry.audio = None  # looked at: let it go
    return stretches


async def _hidden_words(
    entry: TranscriptEntry,
    audio: HeardAudio,
    stt: WordTimedStt,
    redactor: Redactor,
    deadline: float,
) -> list[Stretch]:
    """The stretches of ``audio``'s words the redactor hides (empty: not all the message
    hides was found in them)."""
    try:
        async with asyncio.timeout_at(deadline):
            words = await stt.word_times(audio.pcm, audio.sample_rate)
    except (ProviderError, TimeoutError) as exc:
        log.warning(
            "redacted words not aligned (%s): the whole message is silenced", type(exc).__name__
        )
        return []
    duration = len(audio.pcm) / (2 * audio.sample_rate)
    return [
        Stretch(audio.started_at + start, audio.started_at + end, audio.counted_from)
        for start, end in hidden_spans(words, redactor, duration, entry.content)
    ]


def hidden_spans(
    words: Sequence[SpokenWord], redactor: Redactor, duration: float, kept: str
) -> list[tuple[float, float]]:
    """The times (seconds of an audio of ``duration``) to silence for the runs of ``words``
    the redactor's matches cover, the words read as one text (joined as written,
    ``SpokenWord``): from ``WORD_MARGIN_S`` before a match's first word to where the word
    after its last starts (at least ``WORD_MARGIN_S`` after its end; the last word said: the
    audio's end). None unless the words hold at least as many matches of each name as the
    message as it was ``kept`` has placeholders: the recognizer may hear the audio
    differently the second time, and a hidden detail the words miss is silenced with the
    whole message."""
    text, starts = "", []
    for word in words:
        starts.append(len(text))
        text += word.text
    matches = redactor.find(text)
    found = Counter(match.name for match in matches)
    if any(found[name] < count for name, count in redactor.placeholders(kept).items()):
        return []
    spans = []
    for match in matches:
        covered = [
            index
            for index, (word, start) in enumerate(zip(words, starts, strict=True))
            if start < match.end and start + len(word.text) > match.start
        ]
        if covered:
            first, last = words[covered[0]], words[covered[-1]]
            after = words[covered[-1] + 1].start if covered[-1] + 1 < len(words) else duration
            start = max(0.0, first.start - WORD_MARGIN_S)
            spans.append((start, max(after, last.end + WORD_MARGIN_S)))
    return spans
