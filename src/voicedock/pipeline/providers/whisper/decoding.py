"""Whisper on a short encoder context, guarded against degenerate output.

faster-whisper always encodes 30 s of features (3000 frames), which is most of the cost of
a phone utterance of a few seconds. The CTranslate2 encoder accepts fewer frames: the
utterance plus a margin (never less than ``MIN_CONTEXT_FRAMES``) gives the same words in a
fraction of the time. A short context can make the decoder loop on very short or odd input
("Yes. Yes.") or stop early (a lone "I" for a 3 s sentence; with a margin under about
3 s of context beyond the audio this happened to one Piper sentence in ten), so its output is
checked (a token budget from the audio's duration, repeated phrases, the zlib compression
ratio, too few tokens for the audio) and ``None`` asks the caller for the full window.

``prefix`` is text the caller already knows the utterance starts with (the settled part of
a streaming transcript): the decoder is forced through it and only writes the rest.
``prompt`` is Whisper's previous text (the keyterms, ``domain/vocabulary.py``): the decoder
reads it before the start of the transcript, as faster-whisper's ``initial_prompt``, which
makes the words it holds likelier; it is never part of the result.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

from voicedock.pipeline.providers.whisper.model import Audio, Tokenizer, WhisperModel

FULL_CONTEXT_FRAMES = 3000  # Whisper's 30 s window, 10 ms per frame
MIN_CONTEXT_FRAMES = 600  # below ~6 s of context short words start to repeat
MARGIN_FRAMES = 400  # context beyond the audio's last frame
MAX_COMPRESSION_RATIO = 2.4  # faster-whisper's own threshold for repetitive output
MAX_REPEATS = 3  # a phrase said this often in a row is taken for a decoder loop
TOKENS_PER_SECOND = 8  # well above fast speech (~5 tokens/s, punctuation included)
MIN_TOKENS_PER_SECOND = 1.5  # well below slow speech, beyond the first second of audio
_WORD = re.compile(r"[\w']+")
MAX_PROMPT_TOKENS = 223  # Whisper's previous text: at most half its 448-token context, less one


def context_frames(
    audio_frames: int, *, min_frames: int = MIN_CONTEXT_FRAMES, margin_frames: int = MARGIN_FRAMES
) -> int:
    """Encoder frames for audio of ``audio_frames``: it plus the margin, in whole 100s,
    within ``min_frames`` and the full window."""
    wanted = -(-(audio_frames + margin_frames) // 100) * 100
    return min(FULL_CONTEXT_FRAMES, max(min_frames, wanted))


def token_budget(duration_s: float) -> int:
    """The most tokens a transcript of ``duration_s`` of speech may take; reaching it means
    the decoder is looping."""
    return min(200, int(duration_s * TOKENS_PER_SECOND) + 10)


def degenerate(text: str, tokens: int, budget: int, duration_s: float = 0.0) -> bool:
    """A transcript that is a decoder loop, or stopped early, rather than what was said."""
    if tokens >= budget or tokens < MIN_TOKENS_PER_SECOND * (duration_s - 1.0):
        return True
    if len(text) >= 20:
        raw = text.encode()
        if len(raw) / len(zlib.compress(raw)) > MAX_COMPRESSION_RATIO:
            return True
    words = _WORD.findall(text.lower())
    return _doubled(words) or any(_repeats(words, n) for n in range(1, 5))


def _doubled(words: list[str]) -> bool:
    """The whole transcript is one phrase said more than once ("Yes. Yes.")."""
    count = len(words)
    return any(
        count % n == 0 and words == words[:n] * (count // n) for n in range(1, count // 2 + 1)
    )


def _repeats(words: list[str], n: int) -> bool:
    """Some ``n`` words follow each other ``MAX_REPEATS`` times in a row."""
    span = n * MAX_REPEATS
    for start in range(len(words) - span + 1):
        phrase = words[start : start + n]
        if all(words[start + k * n : start + (k + 1) * n] == phrase for k in range(1, MAX_REPEATS)):
            return True
    return False


def short_context_transcript(
    model: WhisperModel,
    tokenizer: Tokenizer,
    audio: Audio,
    prefix: str = "",
    *,
    prompt: str = "",
    beam_size: int = 1,
    min_frames: int = MIN_CONTEXT_FRAMES,
    margin_frames: int = MARGIN_FRAMES,
) -> str | None:
    """The transcript of 16 kHz ``audio`` (under 30 s) on a short encoder context, or
    ``None`` when the output looks degenerate. ``model`` is a faster-whisper
    ``WhisperModel``, ``tokenizer`` its ``faster_whisper.tokenizer.Tokenizer``."""
    import ctranslate2

    features = model.feature_extractor(audio)
    frames = context_frames(features.shape[-1], min_frames=min_frames, margin_frames=margin_frames)
    window = np.zeros((1, features.shape[0], frames), dtype=np.float32)
    used = min(frames, features.shape[-1])
    window[0, :, :used] = features[:, :used]
    encoded = model.model.encode(ctranslate2.StorageView.from_array(window))
    forced = tokenizer.encode(" " + prefix.strip()) if prefix.strip() else []
    duration_s = len(audio) / 16000
    budget = token_budget(duration_s) + len(forced)
    start = [*prompt_tokens(tokenizer, prompt), *tokenizer.sot_sequence, tokenizer.no_timestamps]
    # ``max_length`` counts the start tokens and the end of text too; the result holds
    # what follows the start tokens (the forced prefix included).
    result = model.model.generate(
        encoded,
        [start + forced],
        beam_size=beam_size,
        max_length=budget + len(start) + 1,
        suppress_blank=True,
    )
    tokens = [t for t in result[0].sequences_ids[0] if t < tokenizer.eot]
    text = str(tokenizer.decode(tokens)).strip()
    return None if degenerate(text, len(tokens), budget, duration_s) else text


def prompt_tokens(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """``prompt`` as the previous text the decoder reads first (none for ""), its first
    ``MAX_PROMPT_TOKENS`` tokens."""
    if not prompt.strip():
        return []
    return [tokenizer.sot_prev, *tokenizer.encode(" " + prompt.strip())[:MAX_PROMPT_TOKENS]]
