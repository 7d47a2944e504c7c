"""FreeswitchPbx.call_media against the fake FreeSWITCH: mod_audio_stream in, files out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import numpy as np
import pytest

from pbx.freeswitch.fake_freeswitch import FakeFreeswitch, PbxEventRecorder
from pbx.freeswitch.test_pbx_outbound import PASSWORD, make_pbx, request
from voicedock.domain.audio import ULAW
from voicedock.media.codecs import ulaw_decode, ulaw_encode
from voicedock.media.errors import MediaSessionClosed
from voicedock.media.transport import CloseReason
from voicedock.pbx.base import PbxEventKind
from voicedock.pbx.freeswitch.media.call_media import FreeswitchCallMedia
from voicedock.pbx.freeswitch.pbx import FreeswitchPbx

pytestmark = pytest.mark.unit


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeswitch]:
    async with FakeFreeswitch(password=PASSWORD) as fs:
        yield fs


@pytest.fixture
async def started(fake: FakeFreeswitch) -> AsyncIterator[tuple[FreeswitchPbx, PbxEventRecorder]]:
    recorder = PbxEventRecorder()
    async with make_pbx(fake) as pbx:
        await pbx.start(recorder)
        yield pbx, recorder


async def answered_call(pbx: FreeswitchPbx, events: PbxEventRecorder) -> str:
    call = request()
    await pbx.originate(call)
    await events.wait_for(call.call_id, PbxEventKind.ANSWERED)
    return call.call_id


def tone(samples: int, rate: int = 8000) -> bytes:
    t = np.arange(samples) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


async def frames(media: FreeswitchCallMedia, count: int) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(3):
        async for frame in media.inbound_audio():
            got.append(frame)
            if len(got) == count:
                break
    return got


async def speech_frames(media: FreeswitchCallMedia, count: int) -> list[bytes]:
    """The next ``count`` frames after the silence the channel streams while nobody speaks."""
    got: list[bytes] = []
    async with asyncio.timeout(3):
        async for frame in media.inbound_audio():
            if got or frame.strip(b"\x00" if media.format.is_linear else b"\xff"):
                got.append(frame)
            if len(got) == count:
                break
    return got


async def until(condition: object, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_caller_audio_arrives_as_slin_frames(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    channel = fake.uuid_of(call_id)
    async with pbx.call_media(call_id, media_format="slin") as media:
        start = next(c for c in fake.commands if "uuid_audio_stream" in c)
        assert start.startswith(f"api uuid_audio_stream {channel} start ws://127.0.0.1:")
        assert f"/freeswitch/audio/{channel}/" in start
        assert start.endswith(f' mono 8k {{"voicedock_call":"{call_id}"}}')
        assert (await frames(media, 5)) == [bytes(320)] * 5  # the fake's silent start
        speech = tone(800)
        fake.streams_by_uuid[fake.uuid_of(call_id)].send_audio(speech)
        assert b"".join(await speech_frames(media, 5)) == speech
        assert media.metadata == json.dumps({"voicedock_call": call_id}, separators=(",", ":"))
    assert f"api uuid_audio_stream {fake.uuid_of(call_id)} stop" in fake.commands
    assert fake.uuid_of(call_id) in fake.channels  # leaving the media does not end the call


async def test_ulaw_media_converts_both_ways(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    async with pbx.call_media(call_id, media_format="ulaw") as media:
        assert media.format is ULAW
        await frames(media, 5)
        speech = tone(160)
        fake.streams_by_uuid[fake.uuid_of(call_id)].send_audio(speech)
        (frame,) = await speech_frames(media, 1)
        assert frame == ulaw_encode(np.frombuffer(speech, "<i2"))
        spoken = ulaw_encode(np.frombuffer(tone(1600), "<i2"))  # 200 ms
        result = await asyncio.wait_for(media.play(spoken).played(), 3)
        assert result.completed
        played = np.frombuffer(fake.played_audio(fake.uuid_of(call_id)), "<i2")
        assert np.array_equal(played, ulaw_decode(spoken))


async def test_a_stream_that_stalls_is_silence_on_the_clock(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    """FreeSWITCH sends nothing for a while: the media hands the dialogue silence frames in
    the call's format at the wall clock's pace, then the caller's audio again."""
    pbx, events = started
    call_id = await answered_call(pbx, events)
    async with pbx.call_media(call_id, media_format="ulaw") as media:
        await frames(media, 5)
        stream = fake.streams_by_uuid[fake.uuid_of(call_id)]
        stream.stalled = True
        received = media.inbound_frames
        loop = asyncio.get_running_loop()
        start = loop.time()
        got = await frames(media, 40)  # 800 ms
        took = loop.time() - start
        assert media.inbound_frames - received <= 1  # FreeSWITCH sent (almost) nothing
        assert set(got) == {b"\xff" * 160}  # µ-law silence
        assert 0.7 <= took <= 1.2, took  # as fast as the clock, no faster
        assert media.gaps is not None
        assert media.gaps.gaps == 1
        stream.stalled = False
        speech = tone(800)
        stream.send_audio(speech)
        (frame, *_) = await speech_frames(media, 5)
        assert frame == ulaw_encode(np.frombuffer(speech[:320], "<i2"))


async def test_played_audio_reaches_the_channel_as_queued_playbacks(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    audio = tone(8000)  # one second at 8 kHz
    async with pbx.call_media(call_id, media_format="slin") as media:
        loop = asyncio.get_running_loop()
        began = loop.time()
        first = media.play(audio[:3200])
        second = media.play(audio[3200:])
        assert (await asyncio.wait_for(first.played(), 3)).completed
        result = await asyncio.wait_for(second.played(), 3)
        elapsed = loop.time() - began
    assert result.completed
    assert result.played_ms == pytest.approx(800, abs=20)
    assert fake.played_audio(fake.uuid_of(call_id)) == audio
    assert all(path.startswith("/tmp/fake-freeswitch/") for _u, path in fake.playbacks)
    assert len(fake.playbacks) == 3  # the first utterance ends its chunk: 200 | 400 | 400
    assert not fake.broadcasts  # uuid_broadcast would put 100 ms of silence before each file
    assert fake.heard_audio(fake.uuid_of(call_id)) == audio  # back to back, all of it
    assert 0.9 <= elapsed < 2.0  # "played" follows the clock of the channel, not the send


async def test_played_means_the_channel_played_it_all(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    """What end-call does: hang up as soon as ``played()``; the party heard every sample (the
    fake channel plays queued files by the clock, starting when each is queued)."""
    pbx, events = started
    call_id = await answered_call(pbx, events)
    audio = tone(8000 * 3 // 2)  # 1.5 s: four files
    async with pbx.call_media(call_id, media_format="slin") as media:
        assert (await asyncio.wait_for(media.play(audio).played(), 4)).completed
        await media.hangup()
    heard = fake.heard_audio(fake.uuid_of(call_id))
    assert heard == audio


async def test_barge_in_breaks_playback_and_drops_stale_chunks(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    async with pbx.call_media(call_id, media_format="slin") as media:
        playback = media.play(tone(8000 * 5))  # five seconds
        await until(lambda: len(fake.playbacks) >= 2)
        await asyncio.sleep(0.3)
        result = await media.flush()
        assert result is not None
        assert not result.completed
        assert 250 <= result.heard_ms <= 1000
        assert fake.breaks == [fake.uuid_of(call_id)]
        heard_ms = len(fake.heard_audio(fake.uuid_of(call_id))) / 16  # 8 kHz L16
        assert heard_ms == pytest.approx(result.heard_ms, abs=60)  # what the channel played
        assert (await playback.played()).completed is False
        playbacks = len(fake.playbacks)
        await asyncio.sleep(0.2)  # play events of chunks sent before the flush still come
        assert len(fake.playbacks) == playbacks
        queued = fake.played_audio(fake.uuid_of(call_id))
        assert len(queued) <= 1.6 * 16000  # at most chunk + lead queued
        after = media.play(tone(800))
        assert (await asyncio.wait_for(after.played(), 2)).completed
        assert len(fake.playbacks) == playbacks + 1


async def test_dtmf_and_remote_hangup_reach_the_media(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    async with pbx.call_media(call_id, media_format="slin16") as media:
        assert media.format.sample_rate == 16000
        assert " mono 16k " in next(c for c in fake.commands if "uuid_audio_stream" in c)
        fake.press_digit(fake.uuid_of(call_id), "7")
        async with asyncio.timeout(2):
            digit = await anext(media.dtmf())
        assert digit == "7"
        fake.remote_hangup(fake.uuid_of(call_id))
        await events.wait_for(call_id, PbxEventKind.HANGUP)
        await until(lambda: media.closed)
        assert media.close_reason is CloseReason.PEER
        async with asyncio.timeout(1):  # the caller's audio ends, it does not hang
            remaining = [f async for f in media.inbound_audio()]
        assert len(remaining) < 250


async def test_media_hangup_kills_the_channel(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    async with pbx.call_media(call_id) as media:
        await media.hangup(close_wait=1.0)
        with pytest.raises(MediaSessionClosed):
            media.play(b"\xff" * 160)
    assert f"api uuid_kill {fake.uuid_of(call_id)} NORMAL_CLEARING" in fake.commands
    hangup = await events.wait_for(call_id, PbxEventKind.HANGUP)
    assert hangup.cause == 16
    assert f"api uuid_audio_stream {fake.uuid_of(call_id)} stop" not in fake.commands


async def test_media_refused_for_unknown_call_and_stranger_connections(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    import aiohttp

    from voicedock.errors import MediaError

    pbx, events = started
    with pytest.raises(MediaError):
        async with pbx.call_media("3f0d3a60-0000-4000-8000-000000000000"):
            pass
    call_id = await answered_call(pbx, events)
    base = pbx.media.server.public_url
    async with aiohttp.ClientSession() as http:
        for path in (f"/freeswitch/audio/{fake.uuid_of(call_id)}/guess", "/freeswitch/audio/x/y"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(base + path)
            assert info.value.status == 403
    assert pbx.media.server.refused == 2
