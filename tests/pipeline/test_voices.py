"""The node's voices (pipeline/speaking/node_voices.py): the operator's Piper voice described by its
own ``.onnx.json``, espeak-ng's listing, OpenAI's only with the operator's key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicedock.config import SpeechSettings
from voicedock.pipeline.providers.piper_tts import piper_available
from voicedock.pipeline.speaking.node_voices import (
    OPENAI_TTS_VOICES,
    node_voices,
    parse_espeak_voices,
    piper_voices,
    voice_names,
)

pytestmark = pytest.mark.unit

ESPEAK_LISTING = """Pty Language       Age/Gender VoiceName          File            Other Languages
 5  af              --/M      Afrikaans          gmw/af
 2  en-gb           --/M      English_(Great_Britain) gmw/en            (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  bad;rm          --/M      Nasty              x/y
 5  chr-US-Qaaa-x-west --/M      Cherokee_          iro/chr
"""


def test_espeak_listing() -> None:
    voices = parse_espeak_voices(ESPEAK_LISTING)
    assert [v.id for v in voices] == ["espeak-ng:af", "espeak-ng:en-gb", "espeak-ng:en-us"]
    assert voices[2].name == "English (America)"
    assert voices[2].tts_config == {"provider": "espeak-ng", "voice": "en-us"}
    assert {v.sample_rate for v in voices} == {22050}


@pytest.mark.skipif(not piper_available(), reason="Piper not installed")
def test_the_operators_piper_voice_is_described_by_its_json(tmp_path: Path) -> None:
    model = tmp_path / "de_DE-thorsten-low.onnx"
    model.write_bytes(b"not loaded to be listed")
    described = {"audio": {"sample_rate": 16000, "quality": "low"}, "dataset": "thorsten"}
    described["language"] = {"code": "de_DE"}
    Path(f"{model}.json").write_text(json.dumps(described))
    (voice,) = piper_voices(str(model))
    assert voice.id == "piper:de_DE-thorsten-low"
    assert (voice.language, voice.sample_rate, voice.name) == ("de-DE", 16000, "thorsten (low)")
    speech = SpeechSettings(piper_model_path=str(model))
    assert voice in node_voices(speech)
    assert voice_names(speech, "piper") == {"de_DE-thorsten-low"}
    assert piper_voices(str(tmp_path / "missing.onnx")) == ()


def test_openai_voices_only_with_the_operators_key() -> None:
    assert not [v for v in node_voices(SpeechSettings()) if v.cloud]
    cloud = [v for v in node_voices(SpeechSettings(openai_api_key="sk-x")) if v.cloud]
    assert {v.voice for v in cloud} == OPENAI_TTS_VOICES
    assert {v.sample_rate for v in cloud} == {24000}
