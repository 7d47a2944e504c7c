"""MediaSession (server mode) against the in-process fake Asterisk /media endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from media.fake_asterisk import FakeAsterisk
from voicedock.media.errors import MediaConnectionLost, MediaSessionClosed, MediaStartTimeout
from voicedock.media.gap_filler import GapFrame
from voicedock.pbx.asterisk.media.chan_websocket import ControlFormat
from voicedock.pbx.asterisk.media.session import CloseReason, MediaSession

pytestmark = pytest.mark.unit

SPEECH_BYTE = 0x42


async def wait_until(predicate: object, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("json_format", [False, True])
async def test_media_start_and_inbound_frames(json_format: bool) -> None:
    async with (
        FakeAsterisk(json_format=json_format) as fake,
        MediaSession.connect(fake.url()) as media,
    ):
        assert media.started.format == "ulaw"
        assert media.started.optimal_frame_size == 160
        assert media.started.connection_id == "5e29e219-a229-4e81-b0eb-8b6e5c0a6aba"
        assert media.control_format is (ControlFormat.JSON if json_format else ControlFormat.PLAIN)
        frames = []
        async for frame in media.inbound_audio():
            frames.append(frame)
            if len(frames) == 5:
                break
        assert [len(f) for f in frames] == [160] * 5
        assert [f[0] for f in frames] == [0, 1, 2, 3, 4]  # in order, none lost


async def test_frames_go_to_a_consumer_as_they_arrive_queued_ones_first() -> None:
    # The conversation's path: no task woken per frame; none lost or reordered at the switch,
    # and the inbound iteration then only ends with the media.
    async with FakeAsterisk() as fake, MediaSession.connect(fake.url()) as media:
        await wait_until(lambda: media.caller.inbound_frames >= 3)  # some wait in the queue
        frames: list[bytes] = []
        media.deliver_audio_to(frames.append)
        queued = len(frames)
        assert queued >= 3
        await wait_until(lambda: len(frames) >= queued + 5)
        assert [f[0] for f in frames] == list(range(len(frames)))
        assert media.caller.inbound_frames == len(frames)
        await fake.channel().ws.close(code=1000)
        async with asyncio.timeout(2):
            assert [f async for f in media.inbound_audio()] == []


@pytest.mark.parametrize(("fmt", "size", "silence"), [("ulaw", 160, 0xFF), ("slin16", 640, 0)])
async def test_a_caller_who_sends_nothing_is_heard_as_silence_on_the_clock(
    fmt: str, size: int, silence: int
) -> None:
    """Asterisk sends nothing (a far end with silence suppression): while the caller's audio
    is read, the gap comes as silence frames in the session's format at the clock's pace,
    from the moment reading started; the caller's own frames go on as they come."""
    async with (
        FakeAsterisk(send_audio=False, fmt=fmt, frame_size=size) as fake,
        MediaSession.connect(fake.url()) as media,
    ):
        loop = asyncio.get_running_loop()
        frames = media.inbound_audio()
        start = loop.time()
        first = await anext(frames)
        assert 0.09 <= loop.time() - start <= 0.2  # a gap once nothing came for 100 ms
        got = [first]
        while len(got) < 50:
            got.append(await anext(frames))
        took = loop.time() - start
        assert set(got) == {bytes([silence]) * size}
        assert all(isinstance(frame, GapFrame) for frame in got)
        assert 0.9 <= took <= 1.2, took  # a second of silence takes a second
        await fake.channel().ws.send_bytes(b"\x42" * size)  # the caller speaks
        spoken = await anext(frames)
        assert spoken == b"\x42" * size
        assert not isinstance(spoken, GapFrame)
        assert media.caller.gaps is not None
        assert media.caller.gaps.gaps == 1
        assert media.caller.inbound_frames == 1  # the only frame Asterisk sent


async def test_gap_filling_can_be_turned_off() -> None:
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url(), fill_gaps_after=None) as media,
    ):
        assert media.caller.gaps is None
        got: list[bytes] = []
        media.deliver_audio_to(got.append)
        async with asyncio.TaskGroup() as tasks:
            ended = tasks.create_task(anext(media.inbound_audio(), None))
            await asyncio.sleep(0.3)
            assert got == []  # nothing came, nothing is made up
            await fake.channel().ws.send_bytes(b"\x42" * 160)
            await wait_until(lambda: got == [b"\x42" * 160])
            ended.cancel()


async def test_silence_is_streamed_while_idle() -> None:
    async with FakeAsterisk(send_audio=False) as fake, MediaSession.connect(fake.url()):
        await asyncio.sleep(0.25)
        played = fake.channel().played
        assert 9 <= len(played) <= 14
        assert set(b"".join(played)) == {0xFF}


@pytest.mark.parametrize("json_format", [False, True])
async def test_play_resolves_when_asterisk_reports_the_mark(json_format: bool) -> None:
    async with (
        FakeAsterisk(send_audio=False, json_format=json_format) as fake,
        MediaSession.connect(fake.url(), checkpoint_frames=4) as media,
    ):
        speech = bytes([SPEECH_BYTE]) * (160 * 10 + 50)  # 10.3 frames
        playback = media.play(speech, mark="tts-done-1")
        result = await asyncio.wait_for(playback.played(), 2)
        assert result.completed
        assert result.played_ms == result.sent_ms == 11 * 20
        played = b"".join(fake.channel().played)
        start = played.index(SPEECH_BYTE)
        # Every speech byte arrived in order, the last partial frame padded with µ-law silence.
        assert played[start : start + len(speech)] == speech
        assert played[start + len(speech) : start + 11 * 160] == b"\xff" * 110
        commands = fake.channel().commands
        marks = [c for c in commands if "MARK_MEDIA" in c]
        assert len(marks) == 3  # checkpoints after frames 4 and 8, then the final mark
        assert "tts-done-1" in marks[-1]
        assert fake.channel().marks_processed[-1] == "tts-done-1"


async def test_streaming_playback_from_an_async_iterator() -> None:
    async def tts() -> AsyncIterator[bytes]:
        for i in range(7):
            await asyncio.sleep(0.005)
            yield bytes([i + 1]) * 77  # chunks that never line up with frames

    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url()) as media,
    ):
        result = await asyncio.wait_for(media.play(tts()).played(), 2)
        assert result.completed
        speech = b"".join(f for f in fake.channel().played if f != b"\xff" * 160)
        expected = b"".join(bytes([i + 1]) * 77 for i in range(7))
        assert speech[: len(expected)] == expected
        assert len(speech) == 4 * 160


async def test_flush_drops_queued_audio_and_reports_what_was_heard() -> None:
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url(), checkpoint_frames=5) as media,
    ):
        first = media.play(bytes([SPEECH_BYTE]) * 160 * 100)  # 2 s
        second = media.play(bytes([0x43]) * 160 * 10)
        await asyncio.sleep(0.3)
        heard = await media.flush()
        assert heard is not None
        assert not heard.completed
        assert 150 <= heard.heard_ms <= 400
        assert heard.played_ms <= heard.heard_ms <= heard.sent_ms
        assert heard.sent_ms - heard.played_ms <= 5 * 20 + 60
        assert (await first.played()) == heard
        assert not (await second.played()).completed
        commands = fake.channel().commands
        await wait_until(lambda: "CONTINUE_MEDIA" in commands)
        assert commands[-2:] == ["FLUSH_MEDIA", "CONTINUE_MEDIA"]
        await asyncio.sleep(0.1)
        played_after = fake.channel().played[-3:]
        assert all(f == b"\xff" * 160 for f in played_after)  # back to silence
        speech_frames = sum(1 for f in fake.channel().played if f[0] == SPEECH_BYTE)
        assert speech_frames * 20 <= heard.sent_ms


async def test_a_reply_cuts_the_silence_written_ahead_and_plays_at_once() -> None:
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url()) as media,
    ):
        await asyncio.sleep(0.3)
        channel = fake.channel()
        assert channel.queued_frames >= 2  # silence written ahead, waiting at Asterisk
        played_before = len(channel.played)
        playback = media.play(bytes([SPEECH_BYTE]) * 160 * 5)
        await wait_until(lambda: any(f[0] == SPEECH_BYTE for f in channel.played))
        first = next(i for i, f in enumerate(channel.played) if f[0] == SPEECH_BYTE)
        assert first - played_before <= 2  # not behind the 40-140 ms of silence queued
        assert "FLUSH_MEDIA" in channel.commands
        assert (await asyncio.wait_for(playback.played(), 2)).completed
        assert media.pacer.stats.silence_cut_frames >= 2


async def test_a_cut_writes_again_the_marks_still_queued_at_asterisk() -> None:
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url()) as media,
    ):
        await asyncio.sleep(0.2)
        channel = fake.channel()
        channel.paused = True  # Asterisk lags: the first reply and its mark stay in its queue
        first = media.play(bytes([SPEECH_BYTE]) * 160 * 2, mark="first")
        await wait_until(lambda: "MARK_MEDIA first" in channel.commands)
        await asyncio.sleep(0.2)  # its frames are long due by voicedock's schedule
        second = media.play(bytes([0x43]) * 160 * 2, mark="second")
        await wait_until(lambda: channel.commands.count("MARK_MEDIA first") == 2)
        flush = len(channel.commands) - 1 - channel.commands[::-1].index("FLUSH_MEDIA")
        assert channel.commands[flush + 1] == "MARK_MEDIA first"  # right behind the flush
        channel.paused = False
        assert (await asyncio.wait_for(first.played(), 2)).completed
        assert (await asyncio.wait_for(second.played(), 2)).completed


async def test_a_cut_inside_a_streaming_reply_keeps_its_final_mark_for_its_end() -> None:
    async def tts() -> AsyncIterator[bytes]:
        yield bytes([SPEECH_BYTE]) * 160 * 2
        await asyncio.sleep(0.4)  # the voice stalls: its first frames are heard, then silence
        yield bytes([0x43]) * 160 * 2

    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url()) as media,
    ):
        await asyncio.sleep(0.2)
        result = await asyncio.wait_for(media.play(tts(), mark="reply").played(), 3)
        assert result.completed
        tail = [f for f in fake.channel().played if f[0] == 0x43]
        assert len(tail) == 2  # reported done only once its last frames were played
        assert fake.channel().commands.count("MARK_MEDIA reply") == 1
        assert media.pacer.stats.silence_cut_frames >= 2  # the stall's silence was cut


async def test_flush_with_nothing_playing_returns_none() -> None:
    async with FakeAsterisk(send_audio=False) as fake, MediaSession.connect(fake.url()) as media:
        assert await media.flush() is None


async def test_xoff_pauses_output_without_losing_audio_and_xon_resumes() -> None:
    async with (
        FakeAsterisk(send_audio=False, xoff_level=6, xon_level=3) as fake,
        MediaSession.connect(fake.url()) as media,
    ):
        await wait_until(lambda: fake.channels)
        fake.channel().paused = True  # playout stalls, so the queue fills up
        payload = b"".join(bytes([i]) * 160 for i in range(1, 21))
        playback = media.play(payload)
        await wait_until(lambda: media.pacer.paused)
        sent_before = playback.frames_sent
        await asyncio.sleep(0.1)
        assert playback.frames_sent == sent_before  # nothing sent while XOFF
        assert media.pacer.queued_frames == 20 - sent_before  # nothing dropped
        fake.channel().paused = False
        result = await asyncio.wait_for(playback.played(), 3)
        assert result.completed
        speech = [f for f in fake.channel().played if f != b"\xff" * 160]
        assert speech == [bytes([i]) * 160 for i in range(1, 21)]
        assert fake.channel().dropped_full == 0
        assert media.pacer.stats.xoff_count >= 1


async def test_dtmf() -> None:
    async with (
        FakeAsterisk(send_audio=False, json_format=True) as fake,
        MediaSession.connect(fake.url()) as media,
    ):
        await fake.channel().ws.send_str('{"event":"DTMF_END","channel_id":"c","digit":"5"}')
        await fake.channel().ws.send_str("DTMF_END digit:# channel_id:c")
        digits = []
        async for digit in media.dtmf():
            digits.append(digit)
            if len(digits) == 2:
                break
        assert digits == ["5", "#"]


async def test_malformed_messages_are_ignored_and_short_audio_messages_reframed() -> None:
    early: list[str | bytes] = [b"\x00" * 160, "GARBAGE before start"]
    async with (
        FakeAsterisk(send_audio=False, send_before_start=early) as fake,
        MediaSession.connect(fake.url()) as media,
    ):
        ws = fake.channel().ws
        await ws.send_str("{broken json")
        await ws.send_str("MEDIA_START channel:missing-fields")
        await ws.send_bytes(b"\x01" * 100)  # not a whole frame: completed by the next one
        await ws.send_bytes(b"\x02" * 320)  # two frames in one message
        frames = []
        async for frame in media.inbound_audio():
            frames.append(frame)
            if len(frames) == 2:
                break
        assert frames == [b"\x01" * 100 + b"\x02" * 60, b"\x02" * 160]
        assert media.caller.reframed_messages == 2
        assert media.ignored_messages == 2
        assert not media.closed
        result = await asyncio.wait_for(media.play(b"\x42" * 160).played(), 2)
        assert result.completed


async def test_short_audio_messages_are_reframed_byte_for_byte() -> None:
    """Asterisk's 58- and 76-byte messages: the same bytes come out, as exact 160-byte frames."""
    stream = bytes(i % 251 for i in range(160 * 12))
    sizes = [
        58,
        76,
        160,
        26,
        58,
        76,
        58,
        76,
        160,
        58,
        58,
        44,
        320,
        160,
        58,
        76,
        26,
        160,
        76,
        58,
        78,
    ]
    assert sum(sizes) == len(stream)
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url()) as media,
    ):
        ws = fake.channel().ws
        offset = 0
        for size in sizes:
            await ws.send_bytes(stream[offset : offset + size])
            offset += size
        frames = []
        async for frame in media.inbound_audio():
            frames.append(frame)
            if len(frames) == 12:
                break
        assert [len(f) for f in frames] == [160] * 12
        assert b"".join(frames) == stream
        assert media.caller.inbound_frames == 12


async def test_peer_close_is_reported_as_connection_lost() -> None:
    async with FakeAsterisk(send_audio=False) as fake, MediaSession.connect(fake.url()) as media:
        pending = media.play(b"\x42" * 160 * 200)
        await wait_until(lambda: fake.channels)
        await fake.channel().ws.close(code=1000)
        assert await asyncio.wait_for(media.wait_closed(), 2) is CloseReason.PEER
        assert not (await pending.played()).completed
        with pytest.raises(MediaConnectionLost):
            media.play(b"\x42" * 160)
        assert [f async for f in media.inbound_audio()] == []


async def test_aclose_is_idempotent_and_later_use_is_a_local_error() -> None:
    async with FakeAsterisk(send_audio=False) as fake, MediaSession.connect(fake.url()) as media:
        await media.aclose()
        await media.aclose()
        assert media.close_reason is CloseReason.LOCAL
        with pytest.raises(MediaSessionClosed):
            media.play(b"\x42" * 160)
        with pytest.raises(MediaSessionClosed):
            await media.flush()


async def test_hangup_sends_hangup_and_asterisk_closes() -> None:
    async with FakeAsterisk(send_audio=False) as fake, MediaSession.connect(fake.url()) as media:
        await media.hangup()
        assert "HANGUP" in fake.channel().commands
        assert media.close_reason is CloseReason.HANGUP
        with pytest.raises(MediaSessionClosed):
            media.play(b"\x42" * 160)


async def test_no_media_start_times_out() -> None:
    async with FakeAsterisk(send_start=False) as fake:
        with pytest.raises(MediaStartTimeout):
            async with MediaSession.connect(fake.url(), start_timeout=0.2):
                pass


async def test_unreachable_asterisk_is_connection_lost() -> None:
    async with FakeAsterisk() as fake:
        url = fake.url()
    with pytest.raises(MediaConnectionLost):
        async with MediaSession.connect(url):
            pass


async def test_one_failing_session_does_not_disturb_another() -> None:
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url("a")) as a,
        MediaSession.connect(fake.url("b")) as b,
    ):
        await wait_until(lambda: len(fake.channels) == 2)
        await fake.channels["a"].ws.close()
        await asyncio.wait_for(a.wait_closed(), 2)
        result = await asyncio.wait_for(b.play(b"\x42" * 320).played(), 2)
        assert result.completed
        assert not b.closed


async def test_errors_in_the_owner_body_propagate_unwrapped() -> None:
    async with FakeAsterisk(send_audio=False) as fake:
        with pytest.raises(KeyError):
            async with MediaSession.connect(fake.url()):
                raise KeyError("owner bug")
