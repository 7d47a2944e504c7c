from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voicedock.media.codecs import ulaw_encode
from voicedock.media.sink import MediaSink
from voicedock.pbx.asterisk.media.session import MediaSession
from voicedock.pipeline.speaking.output import OutputSink, PlaybackHandle

from .fake_asterisk import FakeAsterisk

pytestmark = pytest.mark.unit


def tone(ms: int, rate: int) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


@pytest.fixture
async def media() -> AsyncIterator[tuple[FakeAsterisk, MediaSession]]:
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url(), send_silence=False) as session,
    ):
        yield fake, session


async def test_audio_is_encoded_paced_and_confirmed_by_its_mark(
    media: tuple[FakeAsterisk, MediaSession],
) -> None:
    fake, session = media
    sink: OutputSink = MediaSink(session)
    pcm = tone(200, 8000)
    handle: PlaybackHandle = await sink.play(pcm, 8000)
    assert handle.duration_ms == pytest.approx(200.0)
    await asyncio.wait_for(handle.started(), 1.0)
    await asyncio.wait_for(handle.played(), 2.0)
    channel = fake.channel()
    assert b"".join(channel.played) == ulaw_encode(pcm)  # 10 whole frames, byte-exact
    assert len(channel.marks_processed) == 1  # the one playback's, processed at its end
    assert await handle.flush() == pytest.approx(200.0)  # finished audio was heard in full


async def test_the_sink_keeps_no_playback_once_its_caller_lets_go(
    media: tuple[FakeAsterisk, MediaSession],
) -> None:
    # A call plays hundreds of chunks; none may live as long as the call (memory, and what
    # every full garbage collection has to walk).
    _fake, session = media
    sink = MediaSink(session)
    handle = await sink.play(tone(40, 8000), 8000)
    await asyncio.wait_for(handle.played(), 2.0)
    gone = weakref.ref(handle)
    del handle
    gc.collect()
    assert gone() is None


async def test_tts_rate_is_resampled_once_to_the_session_rate(
    media: tuple[FakeAsterisk, MediaSession],
) -> None:
    fake, session = media
    sink = MediaSink(session)
    handle = await sink.play(tone(300, 22050), 22050)
    assert handle.duration_ms == pytest.approx(300.0, abs=0.2)
    await asyncio.wait_for(handle.played(), 2.0)
    assert len(fake.channel().played) == 15  # 300 ms of 20 ms ulaw frames at 8 kHz


async def test_flush_stops_audio_and_reports_what_was_heard(
    media: tuple[FakeAsterisk, MediaSession],
) -> None:
    fake, session = media
    sink = MediaSink(session)
    first = await sink.play(tone(2000, 8000), 8000)
    second = await sink.play(tone(1000, 8000), 8000)
    await first.started()
    await asyncio.sleep(0.3)
    heard = await first.flush()
    assert 150.0 <= heard <= 600.0
    assert await second.flush() == 0.0
    await asyncio.wait_for(first.played(), 0.5)
    await asyncio.wait_for(second.played(), 0.5)
    await asyncio.sleep(0.06)
    channel = fake.channel()
    assert "FLUSH_MEDIA" in channel.commands
    assert len(channel.played) * 20 <= heard + 100  # Asterisk stopped playing at the flush


async def test_flush_after_the_session_closed_does_not_raise(
    media: tuple[FakeAsterisk, MediaSession],
) -> None:
    _, session = media
    sink = MediaSink(session)
    handle = await sink.play(tone(1000, 8000), 8000)
    await handle.started()
    await session.aclose()
    heard = await handle.flush()
    assert 0.0 <= heard < 1000.0
    await asyncio.wait_for(handle.played(), 0.5)
