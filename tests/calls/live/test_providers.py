"""Provider construction from the assistant configuration, and caller-audio conversion."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
import numpy as np
import pytest

from media.fake_asterisk import FakeAsterisk
from pipeline.fakes import FakeLlm, FakeStt, FakeTts
from voicedock.calls.live.caller_audio import CallerAudio
from voicedock.calls.live.conversation import LiveConversation
from voicedock.calls.live.providers import build_providers
from voicedock.config import Settings
from voicedock.domain.assistant_config import LlmConfig, SttConfig, TtsConfig, config_of
from voicedock.egress.settings import egress_guard
from voicedock.media.codecs import alaw_encode, ulaw_encode
from voicedock.pbx.asterisk.media.session import MediaSession
from voicedock.pipeline.fallback_plans.llm import LlmPlan
from voicedock.pipeline.providers.base import (
    Llm,
    ProviderConfigError,
    ProviderUnavailableError,
    Stt,
    Tts,
)
from voicedock.pipeline.providers.registry import llm_registry, stt_registry, tts_registry

pytestmark = pytest.mark.unit

TEST_PROVIDER = "live-test-fake"


def _unavailable(config: TtsConfig, _egress: object = None) -> Tts:
    raise ProviderUnavailableError("no voice installed")


@pytest.fixture
def fake_registry() -> Iterator[dict[str, list[Mapping[str, Any]]]]:
    seen: dict[str, list[Mapping[str, Any]]] = {"stt": [], "llm": [], "tts": []}

    def stt(config: SttConfig, _egress: object = None) -> Stt:
        seen["stt"].append(msgspec.to_builtins(config))  # as JSON: what was set
        return FakeStt()

    def llm(config: LlmConfig, _egress: object = None) -> Llm:
        seen["llm"].append(msgspec.to_builtins(config))  # as JSON: what was set
        return FakeLlm()

    def tts(config: TtsConfig, _egress: object = None) -> Tts:
        seen["tts"].append(msgspec.to_builtins(config))  # as JSON: what was set
        return FakeTts()

    stt_registry.register(TEST_PROVIDER, stt)
    llm_registry.register(TEST_PROVIDER, llm)
    tts_registry.register(TEST_PROVIDER, tts)
    tts_registry.register("live-test-broken", _unavailable)
    yield seen
    for registry in (stt_registry, llm_registry, tts_registry):
        registry._factories.pop(TEST_PROVIDER, None)
    tts_registry._factories.pop("live-test-broken", None)


async def test_providers_come_from_the_assistant_sections(
    fake_registry: dict[str, list[Mapping[str, Any]]],
) -> None:
    config = {
        "stt_config": {"provider": TEST_PROVIDER, "language": "de"},
        "llm_config": {"provider": TEST_PROVIDER, "model": "m"},
        "tts_config": {"provider": TEST_PROVIDER, "voice": "v"},
    }
    providers = await build_providers(config_of(config))
    assert isinstance(providers.stt, FakeStt)
    assert isinstance(providers.llm, FakeLlm)
    assert isinstance(providers.tts, FakeTts)
    assert fake_registry["stt"] == [config["stt_config"]]
    assert fake_registry["llm"] == [config["llm_config"]]
    assert fake_registry["tts"] == [config["tts_config"]]


async def test_unavailable_provider_ends_the_call_at_once_and_hangs_up(
    fake_registry: dict[str, list[Mapping[str, Any]]],
) -> None:
    config = {
        "stt_config": {"provider": TEST_PROVIDER},
        "llm_config": {"provider": TEST_PROVIDER},
        "tts_config": {"provider": "live-test-broken"},
        "first_message": "Hello.",
    }
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url(), send_silence=False) as media,
    ):
        result = await asyncio.wait_for(LiveConversation(media, config_of(config)).run(), 3.0)
        assert result.end_reason == "provider-error"
        assert result.transcript == []
        assert fake.channel().commands == ["HANGUP"]  # never an open, silent line


@pytest.mark.parametrize(
    ("fmt", "frame_size", "target_rate"),
    [("ulaw", 160, 8000), ("alaw", 160, 8000), ("slin16", 640, 16000), ("slin24", 960, 16000)],
)
async def test_caller_audio_is_decoded_to_pcm_at_the_vad_rate(
    fmt: str, frame_size: int, target_rate: int
) -> None:
    async with (
        FakeAsterisk(fmt=fmt, frame_size=frame_size, send_audio=False) as fake,
        MediaSession.connect(fake.url(), send_silence=False) as media,
    ):
        live = LiveConversation(media, config_of({}))
        assert live.sample_rate == target_rate
        caller = CallerAudio(media, target_rate)
        rate = media.format.sample_rate
        t = np.arange(rate * 100 // 1000) / rate
        pcm = (np.sin(2 * np.pi * 300 * t) * 6000).astype("<i2")
        wire = {"ulaw": ulaw_encode, "alaw": alaw_encode}.get(fmt, lambda p: p.tobytes())(pcm)
        out = b"".join(
            caller.convert(wire[i : i + frame_size]) for i in range(0, len(wire), frame_size)
        )
        samples = np.frombuffer(out, dtype="<i2").astype(np.float64)
        assert abs(len(samples) - target_rate // 10) <= 2  # 100 ms at the VAD rate
        level = np.sqrt(np.mean(samples[len(samples) // 4 :] ** 2))
        assert 3000 < level < 5000  # a 6000-peak sine survives the codec and resampler


async def test_a_speech_to_speech_plan_is_built_as_a_pipeline(
    fake_registry: dict[str, list[Mapping[str, Any]]],
) -> None:
    say_voice = {"provider": TEST_PROVIDER, "voice": "v"}
    plan = [{"provider": TEST_PROVIDER, "model": "a"}, {"provider": TEST_PROVIDER, "model": "b"}]
    stt = {"provider": TEST_PROVIDER, "language": "de"}
    config = {
        "provider": "xai_realtime",
        "llm_config": {"api_key": "xai-own", "say_voice": say_voice, "fallback_plan": plan},
        "stt_config": stt,
    }
    providers = await build_providers(config_of(config))
    assert providers.realtime is not None
    assert (providers.stt, providers.llm) == (None, None)  # the session's call, until it fails
    pipeline = providers.pipeline
    assert pipeline is not None
    assert isinstance(pipeline.llm, LlmPlan)
    assert pipeline.session.label() == "xai_realtime"  # its own endpoint: xAI's
    assert pipeline.to.label() == f"{TEST_PROVIDER}/a"
    assert fake_registry["llm"] == plan
    assert fake_registry["stt"] == [stt]
    assert fake_registry["tts"] == [say_voice, say_voice]  # the say voice, and the pipeline's
    assert isinstance(pipeline.tts, FakeTts)
    assert pipeline.tts is not providers.tts


async def test_a_speech_to_speech_plan_refused_by_the_egress_policy_is_not_built() -> None:
    plan = [{"provider": "openai-compatible", "base_url": "http://10.0.0.5/v1", "api_key": "k"}]
    config = {
        "provider": "xai_realtime",
        "llm_config": {"api_key": "xai-own", "fallback_plan": plan},
    }
    with pytest.raises(ProviderConfigError, match=r"^llm_config\.fallback_plan\[0\]\.base_url: "):
        await build_providers(config_of(config), egress=egress_guard(Settings()))
