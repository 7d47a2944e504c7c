"""The real offline engines: Piper speaks, the telephone band squeezes, Whisper listens.

Loads both models once (a few seconds on two CPU cores).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loop_ticks import LoopTicks
from voicedock.domain.assistant_config import SttConfig, TtsConfig
from voicedock.pipeline.audio import resample_pcm16
from voicedock.pipeline.providers.registry import create_stt, create_tts
from voicedock.pipeline.providers.whisper.weights import MODEL_SHA256, ensure_model_dir

from .engines import needs_offline_engines

pytestmark = [pytest.mark.unit, needs_offline_engines]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_model_dir(tmp_path_factory.mktemp("whisper") / "base")


def test_weights_are_assembled_and_verified_once(model_dir: Path) -> None:
    assert (model_dir / ".voicedock-verified").read_text() == MODEL_SHA256
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.json"):
        assert (model_dir / name).stat().st_size > 0
    stamp_time = (model_dir / "model.bin").stat().st_mtime_ns
    assert ensure_model_dir(model_dir) == model_dir
    assert (model_dir / "model.bin").stat().st_mtime_ns == stamp_time


# Piper's synthesis is stochastic (noise_scale), so Whisper occasionally drops a word.
@pytest.mark.flaky(reruns=1)
async def test_piper_to_telephone_band_to_whisper(model_dir: Path) -> None:
    tts = create_tts(TtsConfig(provider="piper", sample_rate=16000))
    stt = create_stt(SttConfig(provider="offline", model_path=str(model_dir)))
    text = "Your appointment moved to Thursday afternoon. Goodbye."
    chunks = [c async for c in tts.synthesize(text)]
    assert len(chunks) == 2  # one chunk per sentence: the first can play early
    wideband = b"".join(chunks)
    assert 1.5 < len(wideband) / 2 / 16000 < 8
    telephone = resample_pcm16(resample_pcm16(wideband, 16000, 8000), 8000, 16000)

    # The event loop keeps running while Whisper works in its thread.
    async with LoopTicks() as ticks:
        heard = (await stt.transcribe(telephone, 16000)).lower()
    for word in ("appointment", "thursday", "afternoon"):
        assert word in heard
    assert ticks.count > 5
    await stt.aclose()
    await tts.aclose()
