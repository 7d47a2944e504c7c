from __future__ import annotations

import pytest

from voicedock.domain.assistant_config import LlmConfig, SttConfig, TtsConfig
from voicedock.pipeline.providers.deepgram import DeepgramStt
from voicedock.pipeline.providers.elevenlabs import ElevenLabsTts
from voicedock.pipeline.providers.openai_audio import OpenAiStt, OpenAiTts
from voicedock.pipeline.providers.openai_compat import OpenAiCompatLlm
from voicedock.pipeline.providers.registry import create_llm, create_stt, create_tts

pytestmark = pytest.mark.unit


async def test_cloud_providers_are_built_from_config() -> None:
    llm = create_llm(LlmConfig(provider="openai", model="gpt-4o-mini", api_key="k"))
    stt = create_stt(SttConfig(provider="deepgram", api_key="k"))
    stt2 = create_stt(SttConfig(provider="openai", api_key="k"))
    tts = create_tts(TtsConfig(provider="elevenlabs", api_key="k", voice_id="v"))
    tts2 = create_tts(TtsConfig(provider="openai", api_key="k"))
    assert isinstance(llm, OpenAiCompatLlm)
    assert isinstance(stt, DeepgramStt)
    assert isinstance(stt2, OpenAiStt)
    assert isinstance(tts, ElevenLabsTts)
    assert isinstance(tts2, OpenAiTts)
    for p in (llm, stt, stt2, tts, tts2):
        await p.aclose()
