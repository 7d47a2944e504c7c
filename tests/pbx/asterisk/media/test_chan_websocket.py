"""chan_websocket control messages, byte for byte against the lab captures (findings §2b)."""

from __future__ import annotations

import pytest

from voicedock.media.errors import MediaProtocolError
from voicedock.pbx.asterisk.media.chan_websocket import (
    MAX_COMMAND_BYTES,
    AsteriskError,
    BufferingCompleted,
    Command,
    ControlEvent,
    ControlFormat,
    DtmfEnd,
    MarkProcessed,
    MediaDirection,
    MediaStart,
    MediaXoff,
    MediaXon,
    QueueDrained,
    Status,
    UnknownMessage,
    encode_command,
    parse_event,
    validate_correlation_id,
)

pytestmark = pytest.mark.unit

PLAIN_SAMPLES: list[tuple[str, ControlEvent]] = [
    (
        "MEDIA_START connection_id:5e29e219-a229-4e81-b0eb-8b6e5c0a6aba "
        "channel:WebSocket/INCOMING/0x7fede40090e0 channel_id:smoke-1795246989.2 format:ulaw "
        "optimal_frame_size:160 ptime:20",
        MediaStart(
            connection_id="5e29e219-a229-4e81-b0eb-8b6e5c0a6aba",
            channel="WebSocket/INCOMING/0x7fede40090e0",
            channel_id="smoke-1795246989.2",
            format="ulaw",
            optimal_frame_size=160,
            ptime=20,
        ),
    ),
    (
        "STATUS channel_id:smoke-1795247829.120 queue_length:0 xon_level:800 xoff_level:900 "
        "queue_full:false bulk_media:false media_paused:false",
        Status("smoke-1795247829.120", 0, 800, 900, False, False, False),
    ),
    ("QUEUE_DRAINED", QueueDrained()),
    ("MEDIA_MARK_PROCESSED tts-done-1", MarkProcessed("tts-done-1")),
    ("MEDIA_BUFFERING_COMPLETED bulk-1", BufferingCompleted("bulk-1")),
    ("MEDIA_BUFFERING_COMPLETED", BufferingCompleted("")),
    ("MEDIA_XOFF", MediaXoff()),
    ("MEDIA_XON", MediaXon()),
    ("DTMF_END digit:1 channel_id:smoke-1795248018.158", DtmfEnd("1", "smoke-1795248018.158")),
    (
        "ERROR channel_id:smoke-1795247829.120 error_text:SET_MEDIA_DIRECTION only supports "
        "JSON format.\n",
        AsteriskError("SET_MEDIA_DIRECTION only supports JSON format.", "smoke-1795247829.120"),
    ),
    (
        "ERROR channel_id:smoke-1795247829.120 error_text:SET_MEDIA_DIRECTION only supports "
        "JSON format.\\n",
        AsteriskError("SET_MEDIA_DIRECTION only supports JSON format.", "smoke-1795247829.120"),
    ),
]

JSON_SAMPLES: list[tuple[str, ControlEvent]] = [
    (
        '{"event":"MEDIA_START","connection_id":"voicedock_media","channel":'
        '"WebSocket/voicedock_media/0x556af41f7ec0","channel_id":"smoke-1795247101.11",'
        '"format":"slin16","optimal_frame_size":640,"ptime":20,"channel_variables":'
        '{"VOICEDOCK_TENANT":"acme","VOICEDOCK_CALL":"cslin16j47101",'
        '"MEDIA_WEBSOCKET_CONNECTION_ID":"voicedock_media",'
        '"MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE":"640"}}',
        MediaStart(
            connection_id="voicedock_media",
            channel="WebSocket/voicedock_media/0x556af41f7ec0",
            channel_id="smoke-1795247101.11",
            format="slin16",
            optimal_frame_size=640,
            ptime=20,
            channel_variables={
                "VOICEDOCK_TENANT": "acme",
                "VOICEDOCK_CALL": "cslin16j47101",
                "MEDIA_WEBSOCKET_CONNECTION_ID": "voicedock_media",
                "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": "640",
            },
        ),
    ),
    (
        '{"event":"STATUS","channel_id":"smoke-1795247037.5","queue_length":0,"xon_level":800,'
        '"xoff_level":900,"queue_full":false,"bulk_media":false,"media_paused":false}',
        Status("smoke-1795247037.5", 0, 800, 900, False, False, False),
    ),
    (
        '{"event":"QUEUE_DRAINED","channel_id":"smoke-1795247037.5"}',
        QueueDrained("smoke-1795247037.5"),
    ),
    (
        '{"event":"MEDIA_MARK_PROCESSED","channel_id":"smoke-1795247037.5",'
        '"correlation_id":"tts-done-1"}',
        MarkProcessed("tts-done-1", "smoke-1795247037.5"),
    ),
    (
        '{"event":"MEDIA_BUFFERING_COMPLETED","channel_id":"smoke-1795247037.5",'
        '"correlation_id":"bulk-1"}',
        BufferingCompleted("bulk-1", "smoke-1795247037.5"),
    ),
    (
        '{"event":"DTMF_END","channel_id":"smoke-1795248023.161","digit":"2"}',
        DtmfEnd("2", "smoke-1795248023.161"),
    ),
    ('{"event":"MEDIA_XOFF","channel_id":"c1"}', MediaXoff("c1")),
    ('{"event":"MEDIA_XON","channel_id":"c1"}', MediaXon("c1")),
    (
        '{"event":"ERROR","channel_id":"1795246873.4","error_text":'
        "\"MARK_MEDIA not supported while media direction is 'in'\"}",
        AsteriskError("MARK_MEDIA not supported while media direction is 'in'", "1795246873.4"),
    ),
]


@pytest.mark.parametrize(("raw", "expected"), PLAIN_SAMPLES)
def test_plain_text_events_parse_to_typed_messages(raw: str, expected: ControlEvent) -> None:
    assert parse_event(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), JSON_SAMPLES)
def test_json_events_parse_to_typed_messages(raw: str, expected: ControlEvent) -> None:
    assert parse_event(raw) == expected


def test_bytes_input_is_accepted() -> None:
    assert parse_event(b"MEDIA_XON") == MediaXon()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "unknown event"),
        ("BOGUS_EVENT a:b", "unknown event"),
        ("MEDIA_START connection_id:x channel:y", "missing channel_id"),
        (
            "MEDIA_START connection_id:x channel:y channel_id:z format:ulaw "
            "optimal_frame_size:big ptime:20",
            "optimal_frame_size",
        ),
        ("STATUS channel_id:c queue_length:0", "xon_level"),
        (
            "STATUS channel_id:c queue_length:0 xon_level:800 xoff_level:900 queue_full:maybe "
            "bulk_media:false media_paused:false",
            "queue_full",
        ),
        ("DTMF_END channel_id:c", "missing digit"),
        ("DTMF_END digit:12 channel_id:c", "single character"),
        ("ERROR channel_id:c", "missing error_text"),
        ("{not json", "invalid JSON"),
        ("[1,2]", "unknown event"),
        ('{"event":5}', "without an event name"),
        ('{"command":"MARK_MEDIA"}', "without an event name"),
        ('{"event":"NEW_THING","channel_id":"c"}', "unknown event"),
        ('{"event":"MEDIA_START","channel_id":"c"}', "missing connection_id"),
        (
            '{"event":"MEDIA_START","connection_id":"a","channel":"b","channel_id":"c",'
            '"format":"ulaw","optimal_frame_size":true,"ptime":20}',
            "optimal_frame_size",
        ),
        (
            '{"event":"MEDIA_START","connection_id":"a","channel":"b","channel_id":"c",'
            '"format":"ulaw","optimal_frame_size":160,"ptime":20,"channel_variables":[1]}',
            "channel_variables",
        ),
    ],
)
def test_malformed_or_unknown_messages_become_unknown_message(raw: str, reason: str) -> None:
    event = parse_event(raw)
    assert isinstance(event, UnknownMessage)
    assert reason in event.reason


def test_invalid_utf8_becomes_unknown_message() -> None:
    event = parse_event(b"\xff\xfe MEDIA_XON")
    assert isinstance(event, UnknownMessage)
    assert event.reason == "not valid UTF-8"


def test_plain_values_with_spaces_stay_whole() -> None:
    event = parse_event(
        "MEDIA_START connection_id:a channel:Odd Name/1 channel_id:c format:ulaw "
        "optimal_frame_size:160 ptime:20"
    )
    assert isinstance(event, MediaStart)
    assert event.channel == "Odd Name/1"


def test_plain_error_text_keeps_colons_and_keys_in_free_text() -> None:
    event = parse_event("ERROR channel_id:c error_text:bad value: queue_length:5 here")
    assert event == AsteriskError("bad value: queue_length:5 here", "c")


PLAIN_COMMANDS = [
    (Command.GET_STATUS, None, "GET_STATUS"),
    (Command.REPORT_QUEUE_DRAINED, None, "REPORT_QUEUE_DRAINED"),
    (Command.MARK_MEDIA, "tts-done-1", "MARK_MEDIA tts-done-1"),
    (Command.START_MEDIA_BUFFERING, None, "START_MEDIA_BUFFERING"),
    (Command.STOP_MEDIA_BUFFERING, "bulk-1", "STOP_MEDIA_BUFFERING bulk-1"),
    (Command.FLUSH_MEDIA, None, "FLUSH_MEDIA"),
    (Command.PAUSE_MEDIA, None, "PAUSE_MEDIA"),
    (Command.CONTINUE_MEDIA, None, "CONTINUE_MEDIA"),
    (Command.HANGUP, None, "HANGUP"),
    (Command.ANSWER, None, "ANSWER"),
    (Command.MARK_MEDIA, None, "MARK_MEDIA"),
]


@pytest.mark.parametrize(("command", "correlation_id", "expected"), PLAIN_COMMANDS)
def test_plain_commands_byte_for_byte(
    command: Command, correlation_id: str | None, expected: str
) -> None:
    assert encode_command(command, ControlFormat.PLAIN, correlation_id=correlation_id) == expected


def test_json_commands_byte_for_byte() -> None:
    assert (
        encode_command(Command.MARK_MEDIA, ControlFormat.JSON, correlation_id="tts-done-1")
        == '{"command":"MARK_MEDIA","correlation_id":"tts-done-1"}'
    )
    assert (
        encode_command(
            Command.SET_MEDIA_DIRECTION, ControlFormat.JSON, direction=MediaDirection.BOTH
        )
        == '{"command":"SET_MEDIA_DIRECTION","direction":"both"}'
    )
    assert encode_command(Command.FLUSH_MEDIA, ControlFormat.JSON) == '{"command":"FLUSH_MEDIA"}'


def test_set_media_direction_is_json_only() -> None:
    with pytest.raises(MediaProtocolError, match="JSON"):
        encode_command(Command.SET_MEDIA_DIRECTION, direction=MediaDirection.IN)


def test_direction_only_with_set_media_direction() -> None:
    with pytest.raises(MediaProtocolError, match="direction"):
        encode_command(Command.SET_MEDIA_DIRECTION, ControlFormat.JSON)
    with pytest.raises(MediaProtocolError, match="direction"):
        encode_command(Command.HANGUP, ControlFormat.JSON, direction=MediaDirection.IN)


def test_correlation_id_only_where_asterisk_reads_one() -> None:
    with pytest.raises(MediaProtocolError, match="takes no correlation id"):
        encode_command(Command.FLUSH_MEDIA, correlation_id="x")


@pytest.mark.parametrize(
    "bad_id", ["", "has space", "tab\tid", "new\nline", 'quo"te', "back\\slash", "é", "x" * 101]
)
def test_unsafe_correlation_ids_are_refused(bad_id: str) -> None:
    with pytest.raises(MediaProtocolError, match="correlation id"):
        validate_correlation_id(bad_id)
    with pytest.raises(MediaProtocolError):
        encode_command(Command.MARK_MEDIA, correlation_id=bad_id)


def test_commands_over_128_bytes_are_refused() -> None:
    long_id = "m" * 90  # a valid id, but the JSON command would exceed 128 bytes
    assert len(encode_command(Command.MARK_MEDIA, correlation_id=long_id)) <= MAX_COMMAND_BYTES
    with pytest.raises(MediaProtocolError, match="128"):
        encode_command(Command.MARK_MEDIA, ControlFormat.JSON, correlation_id=long_id)


def test_every_command_fits_in_128_bytes_with_a_typical_id() -> None:
    for command in Command:
        kwargs: dict[str, object] = {}
        if command in (Command.MARK_MEDIA, Command.STOP_MEDIA_BUFFERING):
            kwargs["correlation_id"] = "vd:12345.678"
        if command is Command.SET_MEDIA_DIRECTION:
            kwargs["direction"] = MediaDirection.OUT
        text = encode_command(command, ControlFormat.JSON, **kwargs)  # type: ignore[arg-type]
        assert len(text.encode()) < MAX_COMMAND_BYTES
