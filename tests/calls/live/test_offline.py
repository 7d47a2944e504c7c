"""A live call with the real offline engines (Piper speaks, Whisper listens) over fake media."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from media.fake_asterisk import FakeAsterisk
from voicedock.calls.live.conversation import LiveConversation, LiveOptions
from voicedock.domain.assistant_config import TtsConfig, config_of
from voicedock.media.codecs import ulaw_encode
from voicedock.pbx.asterisk.media.session import MediaSession
from voicedock.pipeline.audio import resample_pcm16
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.providers.piper_tts import piper_available
from voicedock.pipeline.providers.registry import create_tts

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(
        importlib.util.find_spec("faster_whisper") is None
        or importlib.util.find_spec("piper") is None
        or not piper_available(),
        reason="offline speech engines not installed",
    ),
]

ASSISTANT = {
    "first_message": "Hello, this is the dental clinic.",
    "stt_config": {"provider": "offline"},
    "llm_config": {"provider": "rule-based"},
    "tts_config": {"provider": "piper"},
}


async def caller_speech(text: str) -> bytes:
    """The caller's words as 8 kHz µ-law, as a phone line would carry them."""
    tts = create_tts(TtsConfig(provider="piper"))
    try:
        pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
        return ulaw_encode(resample_pcm16(pcm, tts.sample_rate, 8000))
    finally:
        await tts.aclose()


async def test_piper_greets_and_whisper_hears_the_caller() -> None:
    words = await caller_speech("What time do you open tomorrow?")
    config = ConversationConfig(
        endpointing=EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None),
        stt_timeout_s=60.0,
    )
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url(), send_silence=False) as media,
        LiveConversation(media, config_of(ASSISTANT), LiveOptions(config=config)) as live,
    ):
        async with asyncio.timeout(20):
            while not live.transcript:
                await asyncio.sleep(0.02)
        assert len(fake.channel().played) > 40  # over 0.8 s of greeting reached Asterisk
        ws = fake.channel().ws
        silence = b"\xff" * 160
        for frame in [silence] * 10 + [words[i : i + 160] for i in range(0, len(words), 160)]:
            await ws.send_bytes(frame)
            await asyncio.sleep(0.002)
        for _ in range(50):  # 1 s of silence ends the turn
            await ws.send_bytes(silence)
            await asyncio.sleep(0.002)
        async with asyncio.timeout(60):
            while not any(e.role == "user" for e in live.transcript):
                await asyncio.sleep(0.05)
        await live.end_call("Goodbye.")
        assert await asyncio.wait_for(live.wait_ended(), 20) == "end-call"
    assert live.result is not None
    user = next(e for e in live.result.transcript if e.role == "user")
    assert "open" in user.content.lower()
    assert live.result.transcript[0].content == ASSISTANT["first_message"]
    assert live.result.transcript[-1].content == "Goodbye."
    assert fake.channel().commands[-1] == "HANGUP"
