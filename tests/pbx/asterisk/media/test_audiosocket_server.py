"""``AudioSocketServer`` and ``AudioSocketSession`` on loopback TCP, with a fake Asterisk
client: a leg announced with ``expect`` gets the connection presenting its UUID, and its session
the caller's audio; the assistant's audio goes out one 20 ms message at a time; hanging up is
the empty hang-up message. A stranger (an unknown UUID, nothing in time, a broken frame, one
too many) is closed and never reaches a leg."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from pbx.asterisk.media.caller_frames import first_frames
from voicedock.domain.audio import SLIN, SLIN16
from voicedock.errors import PbxError
from voicedock.media.errors import MediaConnectionLost, MediaSessionClosed, MediaStartTimeout
from voicedock.media.transport import CloseReason
from voicedock.pbx.asterisk.media.audiosocket import wire
from voicedock.pbx.asterisk.media.audiosocket.server import AudioSocketServer
from voicedock.pbx.asterisk.media.audiosocket.session import AudioSocketSession
from voicedock.pbx.asterisk.media.audiosocket.wire import Message

pytestmark = pytest.mark.unit

HOST = "127.0.0.1"
FRAME = 320  # 20 ms of 8 kHz signed linear
SILENCE = bytes(FRAME)
SPEECH = b"\x42\x01" * (FRAME // 2)


@asynccontextmanager
async def listening(
    *, handshake_seconds: float = 2.0, max_unauthenticated: int = 64
) -> AsyncIterator[AudioSocketServer]:
    server = AudioSocketServer(
        HOST, 0, handshake_seconds=handshake_seconds, max_unauthenticated=max_unauthenticated
    )
    await server.start()
    try:
        yield server
    finally:
        await server.aclose()


class FakeAsterisk:
    """Asterisk's end of one AudioSocket connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received: list[tuple[float, Message]] = []

    @classmethod
    @asynccontextmanager
    async def connect(cls, port: int) -> AsyncIterator[FakeAsterisk]:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            yield cls(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def send(self, kind: int, payload: bytes = b"") -> None:
        self.writer.write(wire.encode(kind, payload))

    def hello(self, leg: str) -> None:
        self.send(wire.KIND_UUID, uuid.UUID(leg).bytes)

    async def message(self) -> Message:
        header = await self.reader.readexactly(3)
        payload = await self.reader.readexactly(int.from_bytes(header[1:], "big"))
        message = Message(header[0], payload)
        self.received.append((asyncio.get_running_loop().time(), message))
        return message

    async def read_until(self, done: Callable[[Message], bool], timeout: float = 1.5) -> None:
        async with asyncio.timeout(timeout):
            while not done(await self.message()):
                pass

    async def closed_by_server(self, timeout: float = 1.0) -> bool:
        """The server closed (or reset) the connection, after whatever it sent."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(4096):
                    pass
        except ConnectionResetError:
            pass
        except TimeoutError:
            return False
        return True


@asynccontextmanager
async def connected_leg() -> AsyncIterator[tuple[AudioSocketSession, FakeAsterisk]]:
    async with listening() as server, FakeAsterisk.connect(server.port) as asterisk:
        pending = server.expect(SLIN, label="media-1")
        asterisk.hello(pending.uuid)
        async with await pending.session(wait=1) as session:
            yield session, asterisk


async def test_the_leg_presenting_its_uuid_gets_the_callers_audio() -> None:
    async with listening() as server, FakeAsterisk.connect(server.port) as asterisk:
        assert server.port > 0
        other = server.expect(SLIN, label="media-0")
        pending = server.expect(SLIN, label="media-1")
        assert pending.uuid != other.uuid
        sent = [bytes([i]) * FRAME for i in range(4)]
        # The UUID and the first frame in one write, a frame cut across two writes.
        stream = wire.encode(wire.KIND_UUID, uuid.UUID(pending.uuid).bytes)
        stream += b"".join(wire.encode(0x10, frame) for frame in sent)
        asterisk.writer.write(stream[:30])
        await asyncio.sleep(0.01)
        asterisk.writer.write(stream[30:400])
        await asyncio.sleep(0.01)
        asterisk.writer.write(stream[400:])
        session = await pending.session(wait=1)
        async with session:
            assert session.label == "media-1"
            assert session.format is SLIN
            assert await first_frames(session, 4) == sent
        assert server.unauthenticated == 0
        assert server.refused == 0
        other.cancel()


async def test_keys_and_unknown_kinds_are_not_audio() -> None:
    async with connected_leg() as (session, asterisk):
        asterisk.send(wire.KIND_DTMF, b"5")  # the same key comes over ARI
        asterisk.send(0x20, b"\x00" * 4)
        asterisk.send(wire.KIND_ERROR, b"\x01")
        asterisk.send(0x10, SPEECH)
        assert await first_frames(session, 1) == [SPEECH]
        assert session.messages_ignored == 1
        assert session.caller.inbound_frames == 1
        await session.aclose()
        assert [digit async for digit in session.dtmf()] == []  # keys come from ARI alone


async def test_the_assistants_audio_goes_out_one_message_per_20ms() -> None:
    async with connected_leg() as (session, asterisk):
        await asterisk.read_until(lambda m: True)  # silence flows while nothing is queued
        assert asterisk.received[0][1] == Message(0x10, SILENCE)
        playback = session.play(SPEECH * 10)
        spoken = itertools.count()  # read as they come, each message's time its arrival
        await asterisk.read_until(lambda m: m.payload == SPEECH and next(spoken) == 9)
        await asterisk.read_until(lambda m: m.payload == SILENCE)
        result = await asyncio.wait_for(playback.played(), 0.5)
        assert result.completed
        assert result.sent_ms == 200
        messages = [m for _, m in asterisk.received]
        assert {m.kind for m in messages} == {0x10}
        assert {len(m.payload) for m in messages} == {FRAME}
        assert sum(m.payload == SPEECH for m in messages) == 10
        await asterisk.read_until(lambda m: len(asterisk.received) >= 22)
        times = [t for t, _ in asterisk.received[:22]]
        assert 0.30 <= times[-1] - times[0] <= 0.80  # 21 periods of 20 ms, loosely
        assert max(sum(t - 0.010 < u <= t for u in times) for t in times) <= 4


async def test_a_barge_in_stops_the_assistant_within_a_frame_or_two() -> None:
    async with connected_leg() as (session, asterisk):
        playback = session.play(SPEECH * 50)
        spoken = itertools.count(1)
        await asterisk.read_until(lambda m: m.payload == SPEECH and next(spoken) == 5)
        heard = await session.flush()
        assert heard is not None
        assert not heard.completed
        assert 80 <= heard.heard_ms <= 160
        assert await playback.played() == heard
        await asyncio.sleep(0.12)
        await asterisk.read_until(lambda m: m.payload == SILENCE)
        payloads = [m.payload for _, m in asterisk.received]
        fifth = [i for i, p in enumerate(payloads) if p == SPEECH][4]
        assert payloads[fifth + 1 :].count(SPEECH) <= 2  # written after the flush was asked


async def test_hangup_sends_the_hangup_message_and_ends_when_asterisk_closes() -> None:
    async with connected_leg() as (session, asterisk):

        async def asterisk_hangs_up() -> None:
            await asterisk.read_until(lambda m: m.kind == wire.KIND_HANGUP)
            asterisk.writer.close()

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(asterisk_hangs_up())
            await asyncio.wait_for(session.hangup(), 1.5)
        assert asterisk.received[-1][1] == Message(wire.KIND_HANGUP, b"")
        assert session.close_reason is CloseReason.HANGUP
        with pytest.raises(MediaSessionClosed):
            session.play(SPEECH)


async def test_asterisk_closing_ends_the_session() -> None:
    async with connected_leg() as (session, asterisk):
        asterisk.send(0x10, SPEECH)
        assert await first_frames(session, 1) == [SPEECH]
        asterisk.writer.close()
        assert await asyncio.wait_for(session.wait_closed(), 1) is CloseReason.PEER
        async with asyncio.timeout(1):
            assert [f async for f in session.inbound_audio()] == []
        with pytest.raises(MediaConnectionLost):
            session.play(SPEECH)


async def test_aclose_is_idempotent_and_closes_the_connection() -> None:
    async with connected_leg() as (session, asterisk):
        await session.aclose()
        await session.aclose()
        assert session.close_reason is CloseReason.LOCAL
        assert await asterisk.closed_by_server()


async def test_a_broken_frame_ends_a_session() -> None:
    async with connected_leg() as (session, asterisk):
        asterisk.writer.write(b"\x10\xff\xff")  # 65535 bytes announced: no frame is that long
        assert await asyncio.wait_for(session.wait_closed(), 1) is CloseReason.BROKEN
        assert await asterisk.closed_by_server()


async def refused(server: AudioSocketServer, send: Callable[[FakeAsterisk], None]) -> None:
    """A connection sending ``send`` is closed and counted."""
    before = server.refused
    async with FakeAsterisk.connect(server.port) as stranger:
        send(stranger)
        assert await stranger.closed_by_server()
    assert server.refused == before + 1
    assert server.unauthenticated == 0


@pytest.mark.parametrize(
    "first",
    [
        # (ids: every test process must collect the same names)
        pytest.param(wire.encode(wire.KIND_UUID, uuid.uuid4().bytes), id="unknown-uuid"),
        pytest.param(wire.encode(wire.KIND_UUID, b"short"), id="not-a-uuid"),
        pytest.param(wire.encode(0x10, bytes(16)), id="audio-first"),
        pytest.param(b"\x01\x10\x01", id="too-long"),  # longer than any AudioSocket message
    ],
)
async def test_a_stranger_is_closed_and_never_reaches_a_leg(first: bytes) -> None:
    async with listening() as server:
        pending = server.expect(SLIN, label="media-1")
        await refused(server, lambda s: s.writer.write(first))
        with pytest.raises(MediaStartTimeout):
            await pending.session(wait=0.05)


async def test_a_stranger_that_says_nothing_is_closed_after_the_handshake_time() -> None:
    async with listening(handshake_seconds=0.1) as server:
        start = asyncio.get_running_loop().time()
        await refused(server, lambda s: None)
        assert 0.08 <= asyncio.get_running_loop().time() - start < 0.8


async def test_one_stranger_too_many_is_closed_at_once() -> None:
    async with (
        listening(max_unauthenticated=2) as server,
        FakeAsterisk.connect(server.port) as first,
        FakeAsterisk.connect(server.port) as second,
    ):
        async with asyncio.timeout(1):
            while server.unauthenticated < 2:
                await asyncio.sleep(0.005)
        async with FakeAsterisk.connect(server.port) as third:
            assert await third.closed_by_server(timeout=0.5)
        assert server.refused == 1
        assert server.unauthenticated == 2
        assert not await first.closed_by_server(timeout=0.05)  # the others wait their turn
        pending = server.expect(SLIN, label="media-1")  # one names its leg: room for one more
        second.hello(pending.uuid)
        async with await pending.session(wait=1) as session:
            assert server.unauthenticated == 1
            leg = server.expect(SLIN, label="media-2")
            async with FakeAsterisk.connect(server.port) as fourth:
                fourth.hello(leg.uuid)
                async with await leg.session(wait=1) as later:
                    assert later.label == "media-2"
            assert session.label == "media-1"
        assert server.refused == 1


async def test_a_leg_asterisk_never_connects_times_out_and_is_refused_later() -> None:
    async with listening() as server:
        pending = server.expect(SLIN, label="media-1")
        with pytest.raises(MediaStartTimeout, match="AudioSocket"):
            await pending.session(wait=0.05)
        await refused(server, lambda s: s.hello(pending.uuid))


async def test_a_cancelled_leg_is_refused() -> None:
    async with listening() as server:
        pending = server.expect(SLIN, label="media-1")
        pending.cancel()
        await refused(server, lambda s: s.hello(pending.uuid))


async def test_a_uuid_serves_one_connection() -> None:
    async with listening() as server, FakeAsterisk.connect(server.port) as asterisk:
        pending = server.expect(SLIN, label="media-1")
        asterisk.hello(pending.uuid)
        async with await pending.session(wait=1):
            await refused(server, lambda s: s.hello(pending.uuid))


async def test_a_wideband_leg_reads_and_writes_its_own_kind() -> None:
    async with listening() as server, FakeAsterisk.connect(server.port) as asterisk:
        pending = server.expect(SLIN16, label="media-1")
        asterisk.hello(pending.uuid)
        asterisk.send(0x10, SPEECH)  # 8 kHz audio on a 16 kHz leg: not its kind
        asterisk.send(0x12, SPEECH * 2)
        async with await pending.session(wait=1) as session:
            assert await first_frames(session, 1) == [SPEECH * 2]
            assert session.messages_ignored == 1
            message = await asterisk.message()
            assert message == Message(0x12, bytes(640))


async def test_aclose_stops_listening() -> None:
    server = AudioSocketServer(HOST, 0)
    await server.start()
    await server.start()  # idempotent
    port = server.port
    await server.aclose()
    await server.aclose()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(HOST, port)


async def test_a_port_in_use_is_named() -> None:
    async with listening() as first:
        second = AudioSocketServer(HOST, first.port)
        with pytest.raises(PbxError, match=f"cannot listen for AudioSocket on {HOST}:{first.port}"):
            await second.start()
        await second.aclose()
