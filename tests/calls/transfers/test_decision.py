"""The agent's spoken answer to a warm transfer: word matching and the listening loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import pytest

from pipeline.test_recognition import BlockingStt
from voicedock.calls.offline_speech import operator_stt
from voicedock.calls.transfers.agent import VOICE_BRIEFING_PROMPT, AgentDialogue
from voicedock.calls.transfers.decision import (
    NodeTranscriber,
    decision_from_words,
    listen_for_decision,
)
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import SttConfig
from voicedock.domain.audio import AudioFormat, format_by_name
from voicedock.media.codecs import encode
from voicedock.pipeline.hearing.recognition import NodeRecognition
from voicedock.pipeline.pools.worker_pool import Priority, WorkerPool

pytestmark = pytest.mark.unit

RATE = 8000
FRAME = RATE // 50  # samples in 20 ms


def _format(name: str) -> AudioFormat:
    fmt = format_by_name(name)
    assert fmt is not None
    return fmt


@pytest.mark.parametrize(
    "text",
    [
        "Yes.",
        "Yeah, sure.",
        "Yes, put them through.",
        "Okay",
        "OK.",
        "o.k.",
        "I accept.",
        "Alright, put her through.",
        "All right.",
        "YES!",
    ],
)
def test_words_meaning_yes_accept(text: str) -> None:
    assert decision_from_words(text) == "accept"


@pytest.mark.parametrize(
    "text", ["No.", "No, thank you.", "Decline.", "Nope", "Not now.", "I can't take it."]
)
def test_words_meaning_no_decline(text: str) -> None:
    assert decision_from_words(text) == "decline"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hello?",
        "Who is this?",
        "I don't know",  # "know" is not "no"
        "No... yes.",  # both: unclear, so nothing is decided
        "Not okay.",
        "I'm not sure.",
        "yesterday",  # a word merely starting with yes
        "Put them on hold",
    ],
)
def test_anything_else_decides_nothing(text: str) -> None:
    assert decision_from_words(text) is None


def test_the_prompt_echoed_back_decides_nothing() -> None:
    # A phone echoing the briefing must not answer it: the prompt names yes and no both.
    assert decision_from_words(VOICE_BRIEFING_PROMPT) is None


def _voice(seconds: float) -> npt.NDArray[np.int16]:
    """A voiced, vowel-like sound (harmonics of a gliding pitch) webrtcvad takes for speech."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(140 + 20 * np.sin(2 * np.pi * 3 * t)) / RATE
    signal = np.zeros_like(t)
    for k in range(1, 15):
        signal += np.sin(k * phase) / k
    signal *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    scaled: npt.NDArray[np.int16] = (signal / np.abs(signal).max() * 8000).astype(np.int16)
    return scaled


def _silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


async def _frames(fmt: AudioFormat, *parts: npt.NDArray[np.int16]) -> AsyncIterator[bytes]:
    samples = np.concatenate(parts)
    for i in range(0, len(samples) - FRAME + 1, FRAME):
        yield encode(fmt, samples[i : i + FRAME])


class ScriptedStt:
    """Answers each utterance with the next scripted text and keeps what it was given."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.heard: list[tuple[int, int]] = []  # (bytes, rate)

    async def __call__(self, pcm: bytes, sample_rate: int) -> str:
        self.heard.append((len(pcm), sample_rate))
        return self.texts.pop(0)


async def test_the_first_utterance_meaning_yes_accepts() -> None:
    fmt = _format("ulaw")
    stt = ScriptedStt("Hello?", "Yes, put them through.", "No.")
    frames = _frames(
        fmt,
        _silence(0.5),
        _voice(0.6),
        _silence(1.0),
        _voice(0.8),
        _silence(1.0),
        _voice(0.5),
        _silence(1.0),
    )
    assert await listen_for_decision(frames, fmt, stt) == "accept"
    assert len(stt.heard) == 2  # the third utterance was never transcribed
    pcm_bytes, rate = stt.heard[1]
    assert rate == RATE
    assert 0.7 <= pcm_bytes / 2 / RATE <= 1.3  # the utterance, not the whole stream


async def test_a_spoken_no_declines_on_a_linear_16k_leg() -> None:
    fmt = _format("slin16")
    stt = ScriptedStt("No, not now.")
    wide = np.repeat(_voice(0.6), 2)  # the same sound at 16 kHz (pitch halved, still voiced)
    samples = np.concatenate([np.zeros(8000, np.int16), wide, np.zeros(32000, np.int16)])

    async def frames() -> AsyncIterator[bytes]:
        for i in range(0, len(samples) - 320 + 1, 320):
            yield encode(fmt, samples[i : i + 320])

    assert await listen_for_decision(frames(), fmt, stt) == "decline"
    assert stt.heard[0][1] == 16000


async def test_silence_or_no_answer_ends_with_the_frames() -> None:
    fmt = _format("ulaw")
    stt = ScriptedStt("Who is calling?")
    frames = _frames(fmt, _silence(0.5), _voice(0.6), _silence(1.0))
    assert await listen_for_decision(frames, fmt, stt) is None
    assert len(stt.heard) == 1
    assert await listen_for_decision(_frames(fmt, _silence(2.0)), fmt, ScriptedStt()) is None


async def test_a_long_monologue_is_not_transcribed() -> None:
    fmt = _format("ulaw")
    stt = ScriptedStt()
    frames = _frames(fmt, _voice(7.0), _silence(1.0))
    assert await listen_for_decision(frames, fmt, stt) is None
    assert stt.heard == []


async def test_a_failing_recognizer_raises_to_the_caller() -> None:
    fmt = _format("ulaw")

    async def broken(pcm: bytes, sample_rate: int) -> str:
        raise RuntimeError("no model")

    with pytest.raises(RuntimeError):
        await listen_for_decision(_frames(fmt, _voice(0.6), _silence(1.0)), fmt, broken)


async def test_the_agent_dialogue_listens_with_the_recognizer_it_was_given() -> None:
    fmt = _format("ulaw")
    stt = ScriptedStt("Yeah, sure.")
    dialogue = AgentDialogue(transcribe=stt)
    frames = _frames(fmt, _silence(0.5), _voice(0.6), _silence(1.0))
    assert await dialogue.listen(frames, fmt) == "accept"
    assert len(stt.heard) == 1


async def test_the_nodes_transcriber_waits_in_the_recognition_pool_seen_by_admission() -> None:
    """``NodeTranscriber``: the answer is a job of the node's pool, so while the calls' work
    holds its workers the answer waits like theirs, and admission control sees the wait."""
    stt = BlockingStt(("Yes.",))
    built: list[SttConfig] = []

    def create(config: SttConfig) -> BlockingStt:
        built.append(config)
        return stt

    recognition = NodeRecognition(WorkerPool(1, name="recognition"), admission_wait_s=0.05)
    speech = SpeechSettings(whisper_model_path="/models/whisper-small", recognition_workers=1)
    dialogue = AgentDialogue(transcribe=NodeTranscriber(recognition, speech, create))
    gate = threading.Event()
    try:
        recognition.pool.submit(lambda: gate.wait(10), Priority.DUE)  # a call's transcription
        fmt = _format("ulaw")
        listening = asyncio.create_task(
            dialogue.listen(_frames(fmt, _silence(0.5), _voice(0.6), _silence(1.0)), fmt)
        )
        async with asyncio.timeout(5):
            while recognition.admits():
                await asyncio.sleep(0.01)
        assert recognition.pool.waiting == 1  # the agent's answer, behind the call's work
        assert not listening.done()
    finally:
        gate.set()
    assert await listening == "accept"
    assert recognition.pool.started[Priority.DUE] == 2
    assert built == [operator_stt("offline", speech)]
    assert built[0].model_path == "/models/whisper-small"  # the operator's model
    await recognition.aclose()
