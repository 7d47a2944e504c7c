"""Whisper hears an assistant's keyterms as its previous text: faster-whisper's
``initial_prompt`` on the full window, and ``<|startofprev|>`` and the terms before the start
of the transcript on the short encoder context; never part of what it returns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from voicedock.domain.assistant_config import SttConfig
from voicedock.pipeline.providers.section import decoded
from voicedock.pipeline.providers.whisper import stt as whisper_stt
from voicedock.pipeline.providers.whisper.decoding import MAX_PROMPT_TOKENS
from voicedock.pipeline.providers.whisper.stt import WhisperStt

pytestmark = pytest.mark.unit

SOT_PREV, SOT, EN, TRANSCRIBE, NO_TIMESTAMPS, EOT = 50361, 50258, 50259, 50359, 50363, 50257
SAID = [11, 12, 13]  # the tokens of "Is Nguyen in?"


class FakeTokenizer:
    """One token per character (its code), a few words decoded back."""

    sot_prev = SOT_PREV
    sot_sequence = (SOT, EN, TRANSCRIBE)
    no_timestamps = NO_TIMESTAMPS
    eot = EOT

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, tokens: list[int]) -> str:
        return "Is Nguyen in?" if tokens == SAID else "?"


@dataclass
class Result:
    sequences_ids: Sequence[Sequence[int]]


@dataclass
class Segment:
    text: str
    words: None = None


@dataclass
class FakeModel:
    """A faster-whisper model that records what it is asked."""

    prompts: list[list[int]] = field(default_factory=list)
    transcribed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model(self) -> FakeModel:
        return self

    @property
    def hf_tokenizer(self) -> object:
        return None

    def feature_extractor(self, audio: Any) -> Any:
        return np.zeros((80, len(audio) // 160), dtype=np.float32)

    def encode(self, features: object) -> object:
        return features

    def generate(self, encoded: object, prompts: list[list[int]], **_: object) -> list[Result]:
        self.prompts.append(prompts[0])
        return [Result([[*SAID, EOT]])]

    def transcribe(self, audio: Any, **options: Any) -> tuple[Iterable[Segment], object]:
        self.transcribed.append(options)
        return [Segment(" Is Nguyen in?")], None


def whisper(monkeypatch: pytest.MonkeyPatch, model: FakeModel, **config: object) -> WhisperStt:
    stt = WhisperStt(decoded(SttConfig, {"provider": "offline", **config}, "stt_config"))
    monkeypatch.setattr(stt, "_model", lambda: model)
    monkeypatch.setattr(whisper_stt, "tokenizer_of", lambda _m, _l: FakeTokenizer())
    return stt


SPEECH = bytes(16000 * 2 * 2)  # 2 s at 16 kHz


def test_the_short_context_reads_the_keyterms_before_the_transcript(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = FakeModel()
    stt = whisper(monkeypatch, model, keyterms=["Acme Dental", "Nguyen"])
    assert stt.transcribe_blocking(SPEECH, 16000, "") == "Is Nguyen in?"
    (prompt,) = model.prompts
    terms = [ord(c) for c in " Acme Dental, Nguyen."]
    assert prompt == [SOT_PREV, *terms, SOT, EN, TRANSCRIBE, NO_TIMESTAMPS]


def test_without_keyterms_the_transcript_starts_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeModel()
    whisper(monkeypatch, model).transcribe_blocking(SPEECH, 16000, "")
    assert model.prompts == [[SOT, EN, TRANSCRIBE, NO_TIMESTAMPS]]


def test_a_long_list_is_cut_to_whispers_previous_text(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeModel()
    stt = whisper(monkeypatch, model, keyterms=[f"Term number {n:02}" for n in range(40)])
    stt.transcribe_blocking(SPEECH, 16000, "")
    prompt = model.prompts[0]
    assert prompt.index(SOT) == 1 + MAX_PROMPT_TOKENS


def test_the_full_window_gets_them_as_the_initial_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeModel()
    stt = whisper(monkeypatch, model, keyterms=["Nguyen"], encoder_context="full")
    assert stt.transcribe_blocking(SPEECH, 16000, "") == "Is Nguyen in?"
    assert model.transcribed[0]["initial_prompt"] == "Nguyen."
    stt = whisper(monkeypatch, model, encoder_context="full")
    stt.transcribe_blocking(SPEECH, 16000, "")
    assert model.transcribed[1]["initial_prompt"] is None
