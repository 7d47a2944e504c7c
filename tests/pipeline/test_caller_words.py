"""A caller turn's transcription handed to the turn that waits for it (``dialogue/hearing.py``
``Words``): in the loop turn after the transcription ends, and a waiter stopped (a barge-in)
never stops the transcription. The whole path, through the PBX, is what
``tests/e2e/test_audio_e2e.py`` and the turn engine's tests hear."""

from __future__ import annotations

import asyncio

import pytest

from voicedock.pipeline.dialogue.hearing import Words

pytestmark = pytest.mark.unit


def transcription(words: Words, said: asyncio.Future[str]) -> asyncio.Task[str | Exception]:
    async def transcribe() -> str | Exception:
        text = await said
        words.settle(text)
        return text

    task = asyncio.ensure_future(transcribe())
    words.start(task)
    return task


async def test_the_turn_has_the_words_in_the_loop_turn_after_the_transcription_ends() -> None:
    words = Words()
    said: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = transcription(words, said)
    heard: list[str | Exception] = []

    async def turn() -> None:
        heard.append(await words.heard())

    waiting = asyncio.ensure_future(turn())
    await asyncio.sleep(0)  # the turn waits for the words
    said.set_result("book me in")
    await asyncio.sleep(0)  # the transcription ends
    await asyncio.sleep(0)  # the turn has them (through the task and a shield: not yet)
    assert heard == ["book me in"]
    await asyncio.gather(waiting, task)


async def test_a_stopped_turn_leaves_the_transcription_to_end_for_the_next() -> None:
    words = Words()
    said: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = transcription(words, said)
    barged = asyncio.ensure_future(words.heard())
    await asyncio.sleep(0)
    barged.cancel()  # a barge-in stops the turn waiting for the words
    with pytest.raises(asyncio.CancelledError):
        await barged
    said.set_result("book me in")
    assert await words.heard() == "book me in"  # the transcription went on
    assert await task == "book me in"


async def test_a_transcription_cancelled_for_a_merged_turn_stops_its_waiters() -> None:
    words = Words()
    said: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    transcription(words, said)
    waiting = asyncio.ensure_future(words.heard())
    await asyncio.sleep(0)
    words.cancel()  # the caller spoke again: the merged audio is transcribed instead
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not words.failed
