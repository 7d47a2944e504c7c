"""mod_audio_stream wire format, and the fake module client against a real aiohttp server."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import WSMsgType, web

from pbx.freeswitch.fake_audio_stream import StreamFormat, parse_server_message, split_l16_frames
from pbx.freeswitch.fake_freeswitch import FakeAudioStreamClient, FakeFreeswitch
from voicedock.pbx.freeswitch.commands import build_audio_stream_start, build_originate
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.settings import EslSettings
from voicedock.pbx.freeswitch.media.audio_stream_wire import (
    AudioStreamWireError,
    encode_stream_audio,
    parse_metadata,
    parse_play_event_body,
)

pytestmark = pytest.mark.unit
UUID = "0b9f3c52-5d6e-4b8a-9c1d-2e3f4a5b6c7d"


def test_stream_audio_message_byte_exact() -> None:
    text = encode_stream_audio(b"\x01\x00\xff\x7f", 8000)
    assert text == (
        '{"type":"streamAudio","data":{"audioDataType":"raw","sampleRate":8000,'
        '"audioData":"AQD/fw=="}}'
    )
    kind, audio = parse_server_message(text)
    assert kind == "streamAudio"
    assert audio is not None
    assert (audio.audio, audio.sample_rate, audio.audio_data_type) == (
        b"\x01\x00\xff\x7f",
        8000,
        "raw",
    )


@pytest.mark.parametrize(
    ("audio", "rate", "kind"),
    [
        (b"", 8000, "raw"),
        (b"\x00", 8000, "raw"),
        (b"\x00\x00", 11025, "raw"),
        (b"\x00\x00", 8000, "flac"),
    ],
)
def test_stream_audio_refusals(audio: bytes, rate: int, kind: str) -> None:
    with pytest.raises(AudioStreamWireError):
        encode_stream_audio(audio, rate, kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"type":1}',
        '{"type":"streamAudio"}',
        '{"type":"streamAudio","data":{"audioData":"%%%","sampleRate":8000}}',
        '{"type":"streamAudio","data":{"audioData":"AAA=","sampleRate":"8000"}}',
    ],
)
def test_bad_server_messages(text: str) -> None:
    with pytest.raises(AudioStreamWireError):
        parse_server_message(text)


def test_l16_frames() -> None:
    fmt = StreamFormat(16000, 1)
    assert fmt.bytes_per_frame == 640
    assert StreamFormat(8000, 2).bytes_per_frame == 640
    assert [len(f) for f in split_l16_frames(bytes(700), fmt)] == [640, 60]
    with pytest.raises(AudioStreamWireError):
        StreamFormat(11025, 1)


def test_metadata_and_play_event() -> None:
    assert parse_metadata('{"call":"c1"}').fields == {"call": "c1"}
    assert parse_metadata("plain text").fields is None
    play = parse_play_event_body(
        '{"audioDataType":"raw","sampleRate":8000,"file":"/tmp/u_0.tmp.r8"}'
    )
    assert (play.file, play.audio_data_type, play.sample_rate) == ("/tmp/u_0.tmp.r8", "raw", 8000)
    with pytest.raises(AudioStreamWireError):
        parse_play_event_body('{"audioDataType":"raw"}')


class MediaServer:
    """A minimal voicedock-side websocket: records what arrives, answers with streamAudio."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.binary: list[bytes] = []
        self.done = asyncio.Event()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.text.append(message.data)
                await ws.send_str(encode_stream_audio(b"\x00\x00" * 160, 8000))
            elif message.type == WSMsgType.BINARY:
                self.binary.append(message.data)
        self.done.set()
        return ws


@pytest.fixture
async def media() -> AsyncIterator[tuple[MediaServer, str]]:
    server = MediaServer()
    app = web.Application()
    app.router.add_get("/fs/{call}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server, f"ws://127.0.0.1:{port}/fs/c1"
    finally:
        await runner.cleanup()


async def test_fake_client_sends_metadata_then_l16(media: tuple[MediaServer, str]) -> None:
    server, url = media
    client = FakeAudioStreamClient(url, '{"call":"c1"}', sample_rate=8000)
    frames = split_l16_frames(bytes(range(256)) * 5, StreamFormat(8000, 1))
    await client.run(frames, linger=0.3)
    assert server.text == ['{"call":"c1"}']
    assert b"".join(server.binary) == bytes(range(256)) * 5
    (reply,) = client.received_text
    kind, audio = parse_server_message(reply)
    assert kind == "streamAudio"
    assert audio is not None
    assert len(audio.audio) == 320


async def test_uuid_audio_stream_start_through_esl(media: tuple[MediaServer, str]) -> None:
    server, url = media
    async with FakeFreeswitch(password="pw-for-test") as fs:
        settings = EslSettings("127.0.0.1", fs.port, "pw-for-test", keepalive_interval=30)
        async with EslClient(settings) as client:
            originate = build_originate(
                call_uuid=UUID,
                destination="+15551230001",
                caller_id_number="+15557654321",
                gateway="gw1",
            )
            assert (await client.bgapi(originate)) is not None
            async with asyncio.timeout(2):
                while UUID not in fs.channels or not fs.channels[UUID].answered:
                    await asyncio.sleep(0.01)
            cmd = build_audio_stream_start(UUID, url, sample_rate=16000, metadata='{"call":"c1"}')
            assert await client.api(cmd) == "+OK Success\n"  # as mod_audio_stream says
            async with asyncio.timeout(3):
                while len(server.binary) < 5:
                    await asyncio.sleep(0.01)
                assert await client.api(f"uuid_audio_stream {UUID} stop") == "+OK Success\n"
                await fs.audio_streams[0].finished.wait()
    assert server.text == ['{"call":"c1"}']
    assert [len(b) for b in server.binary] == [640] * 5
    assert base64.b64decode(json.loads(fs.audio_streams[0].received_text[0])["data"]["audioData"])
