"""The offline engines with keyterms and pronunciations, for real: Piper's voice says a name
misheard without them (steady: the same audio each run, where Piper's noise made one
rendering in four misheard with the keyterms too); Whisper, given the name and the clinic as
keyterms, writes both as they are spelled (the short encoder context and the full window
alike); Piper says an IPA rule as its phonemes, which Whisper hears as the word they spell."""

from __future__ import annotations

import pytest

from voicedock.domain.assistant_config import SttConfig
from voicedock.domain.vocabulary import Pronunciation
from voicedock.pipeline.audio import resample_pcm16
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt

from .engines import needs_offline_engines

pytestmark = [pytest.mark.unit, needs_offline_engines]

SENTENCE = "I would like to see doctor Nguyen at Acme Dental on Monday."


def telephone(pcm: bytes) -> bytes:
    return resample_pcm16(resample_pcm16(pcm, 16000, 8000), 8000, 16000)


@pytest.mark.parametrize("context", ["auto", "full"])
def test_keyterms_make_whisper_write_the_names(context: str) -> None:
    audio = telephone(PiperTts(sample_rate=16000, steady=True).synthesize_sentence(SENTENCE))
    plain = WhisperStt(SttConfig(encoder_context=context)).transcribe_blocking(audio, 16000, "")
    assert "Nguyen" not in plain or "Acme Dental" not in plain  # misheard without them
    keyterms = ["Acme Dental", "Nguyen"]
    stt = WhisperStt(SttConfig(encoder_context=context, keyterms=keyterms))
    heard = stt.transcribe_blocking(audio, 16000, "")
    assert "Nguyen" in heard, heard
    assert "Acme Dental" in heard, heard
    assert heard.count("Nguyen") == 1, heard  # the keyterms are never part of the transcript


def test_piper_says_an_ipa_rule_as_its_phonemes() -> None:
    rule = Pronunciation(grapheme="Nguyen", phoneme="wˈɪn", alphabet="ipa")
    tts = PiperTts(sample_rate=16000, pronunciations=[rule], steady=True)
    audio = tts.synthesize_sentence("I would like to see doctor Nguyen.")
    heard = WhisperStt(SttConfig()).transcribe_blocking(telephone(audio), 16000, "")
    assert "win" in heard.lower(), heard


def test_a_steady_voice_says_a_sentence_the_same_each_time_and_the_default_varies() -> None:
    steady = PiperTts(sample_rate=16000, steady=True)
    assert steady.synthesize_sentence(SENTENCE) == steady.synthesize_sentence(SENTENCE)
    varied = PiperTts(sample_rate=16000)
    assert varied.synthesize_sentence(SENTENCE) != varied.synthesize_sentence(SENTENCE)
    assert steady.voice_identity != varied.voice_identity
