"""The runner loads the default speech models at start-up: the voice before it returns, the
rest in the background; a model that already ran in the process is not run again."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from fakes.calls import calls_of
from fakes.memory_store import MemoryStore
from fakes.pbx import FakePbx, MediaFakePbx
from voicedock.calls.runner import node_speech
from voicedock.config import Settings
from voicedock.pipeline.providers import piper_tts

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def cold_process() -> Iterator[None]:
    """Each test starts as in a fresh process: no model of it ran yet (other tests of the
    process warmed them); what it warms is forgotten after (its models may be stand-ins)."""
    warm = set(node_speech._warm)
    node_speech._warm.clear()
    yield
    node_speech._warm.clear()
    node_speech._warm.update(warm)


async def test_warm_up_loads_the_packaged_voice(store: MemoryStore, settings: Settings) -> None:
    pytest.importorskip("piper")
    settings.speech.stt = "no-such-stt"  # a failing warm-up is only a warning
    settings.speech.tts = "piper"
    pbx = MediaFakePbx(media_server=None)
    piper_tts._voices.clear()
    async with calls_of(store, pbx, settings)[1] as runner:
        await runner.start(warm_up=True)  # already started: no second warm-up
    runner_warm = calls_of(store, pbx, settings)[1]
    await runner_warm.start(warm_up=True)
    await runner_warm.aclose()  # waits for the warm-up task
    assert piper_tts._voices


async def test_no_warm_up_without_a_media_pbx(
    store: MemoryStore, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.speech.stt = "no-such-stt"
    pbx = FakePbx()
    runner = calls_of(store, pbx, settings)[1]
    with caplog.at_level(logging.WARNING):
        await runner.start(warm_up=True)
        await runner.aclose()
    assert "not warmed up" not in caplog.text


async def test_failing_warm_up_is_a_warning(
    store: MemoryStore, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.speech.stt = "no-such-stt"
    settings.speech.tts = "no-such-tts"
    pbx = MediaFakePbx(media_server=None)
    runner = calls_of(store, pbx, settings)[1]
    with caplog.at_level(logging.WARNING):
        await runner.start(warm_up=True)
        await runner.aclose()
    assert "speech no-such-stt not warmed up" in caplog.text
    assert "speech no-such-tts not warmed up" in caplog.text


async def test_warm_up_runs_each_offline_engine_once(
    store: MemoryStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaded and run once at start: the first call's synthesis and transcription are not the
    engines' slower first runs."""
    from voicedock.pipeline.providers.piper_tts import PiperTts
    from voicedock.pipeline.providers.whisper.stt import WhisperStt

    ran: list[tuple[str, object]] = []

    def synthesize(_self: PiperTts, sentence: str) -> bytes:
        ran.append(("tts", sentence))
        return b""

    def transcribe(_self: WhisperStt, pcm: bytes, rate: int, prefix: str) -> str:
        ran.append(("stt", len(pcm) / 2 / rate))
        return ""

    monkeypatch.setattr(PiperTts, "synthesize_sentence", synthesize)
    monkeypatch.setattr(WhisperStt, "_model", lambda _self: object())
    monkeypatch.setattr(WhisperStt, "transcribe_blocking", transcribe)
    settings.speech.stt, settings.speech.tts = "faster_whisper", "piper"
    pbx = MediaFakePbx(media_server=None)
    runner = calls_of(store, pbx, settings)[1]
    await runner.start(warm_up=True)
    await runner.aclose()  # waits for the warm-up task
    assert ran == [("tts", "Hello."), ("stt", 0.5)]  # the voice the greeting needs first


async def test_a_model_that_ran_in_the_process_is_not_run_again(
    store: MemoryStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second runner of the process (a node restarted in place) finds its models warm: it
    starts without running them again, and a voice of other settings is run once."""
    from voicedock.pipeline.providers.piper_tts import PiperTts
    from voicedock.pipeline.providers.whisper.stt import WhisperStt

    ran: list[str] = []
    monkeypatch.setattr(PiperTts, "synthesize_sentence", lambda *_: ran.append("tts") or b"")
    monkeypatch.setattr(WhisperStt, "_model", lambda _self: object())
    monkeypatch.setattr(WhisperStt, "transcribe_blocking", lambda *_: ran.append("stt") or "")
    settings.speech.stt, settings.speech.tts = "faster_whisper", "piper"
    pbx = MediaFakePbx(media_server=None)
    for _ in range(2):
        runner = calls_of(store, pbx, settings)[1]
        await runner.start(warm_up=True)
        await runner.aclose()
    assert ran == ["tts", "stt"]
    settings.speech.piper_model_path = "/srv/voices/other.onnx"  # another model: run once
    runner = calls_of(store, pbx, settings)[1]
    await runner.start(warm_up=True)
    await runner.aclose()
    assert ran == ["tts", "stt", "tts"]


async def test_the_voice_is_warm_before_start_returns(
    store: MemoryStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node takes no call (the PBX connects after the runner started) before its voice
    ran once: the first call's greeting never waits behind the warm-up. Whisper, which the
    greeting does not need (and which may take long to assemble), warms in the background."""
    import threading
    import time

    from voicedock.pipeline.providers.piper_tts import PiperTts
    from voicedock.pipeline.providers.whisper.stt import WhisperStt

    ran: list[str] = []
    whisper_free = threading.Event()

    def synthesize(_self: PiperTts, sentence: str) -> bytes:
        time.sleep(0.2)  # a voice's first synthesis is slow
        ran.append("tts")
        return b""

    def model(_self: WhisperStt) -> object:
        whisper_free.wait(5)  # a model still loading
        return object()

    monkeypatch.setattr(PiperTts, "synthesize_sentence", synthesize)
    monkeypatch.setattr(WhisperStt, "_model", model)
    monkeypatch.setattr(WhisperStt, "transcribe_blocking", lambda *_: ran.append("stt") or "")
    settings.speech.stt, settings.speech.tts = "faster_whisper", "piper"
    pbx = MediaFakePbx(media_server=None)
    runner = calls_of(store, pbx, settings)[1]
    try:
        await runner.start(warm_up=True)
        assert ran == ["tts"]  # the voice is warm; Whisper still loading, not waited for
    finally:
        whisper_free.set()
        await runner.aclose()
    assert ran == ["tts", "stt"]


async def test_what_a_call_runs_is_loaded_at_start_up_with_a_media_pbx(
    store: MemoryStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaded before `voicedock serve` freezes start-up's heap, not on the event loop while
    the first call is answered; a node without media loads no speech pipeline."""
    import voicedock.calls.runner as runner_module

    loaded: list[str] = []
    monkeypatch.setattr(runner_module, "load_call_path", lambda: loaded.append("call path"))
    settings.speech.stt = settings.speech.tts = "no-such-engine"  # no model to load
    for pbx, expected in ((FakePbx(), []), (MediaFakePbx(media_server=None), ["call path"])):
        runner = calls_of(store, pbx, settings)[1]
        await runner.start(warm_up=True)
        await runner.aclose()
        assert loaded == expected
