"""Byte-for-byte tests of the ESL codec (no sockets)."""

from __future__ import annotations

import json

import pytest

from voicedock.pbx.freeswitch.esl.wire import (
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    EslEvent,
    EslParser,
    EslProtocolError,
    LogData,
    RudeRejection,
    UnsafeWireValue,
    encode_api,
    encode_auth,
    encode_bgapi,
    encode_command,
    encode_event_subscription,
    encode_exit,
    encode_sendmsg,
    parse_show_channels_json,
)

pytestmark = pytest.mark.unit

PLAIN_EVENT_BODY = (
    b"Event-Name: CHANNEL_ANSWER\n"
    b"Unique-ID: 1b6d4f0e-0000-4000-8000-000000000001\n"
    b"Event-Date-Local: 2018-11-07%2016%3A59%3A11\n"
    b"Channel-Name: sofia/external/nobody%40192.168.1.235%3A5060\n\n"
)
STREAM = (
    b"Content-Type: auth/request\n\n"
    b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
    b"Content-Type: api/response\nContent-Length: 14\n\n+OK 1234-5678\n"
    + b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(PLAIN_EVENT_BODY)
    + PLAIN_EVENT_BODY
    + b"Content-Type: text/disconnect-notice\nContent-Length: 23\n\nDisconnected, goodbye.\n"
)


def test_parses_a_whole_session_in_one_chunk() -> None:
    messages = EslParser().feed(STREAM)
    assert [type(m) for m in messages] == [
        AuthRequest,
        CommandReply,
        ApiResponse,
        EslEvent,
        DisconnectNotice,
    ]
    reply, api, event = messages[1], messages[2], messages[3]
    assert isinstance(reply, CommandReply)
    assert reply.ok
    assert reply.reply_text == "+OK accepted"
    assert isinstance(api, ApiResponse)
    assert api.text == "+OK 1234-5678\n"
    assert api.ok
    assert isinstance(event, EslEvent)
    assert event.name == "CHANNEL_ANSWER"
    assert event.get("Event-Date-Local") == "2018-11-07 16:59:11"  # URL-decoded
    assert event.get("Channel-Name") == "sofia/external/nobody@192.168.1.235:5060"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_any_chunking_gives_the_same_messages(size: int) -> None:
    parser = EslParser()
    out = []
    for i in range(0, len(STREAM), size):
        out.extend(parser.feed(STREAM[i : i + size]))
    assert out == EslParser().feed(STREAM)


def test_incomplete_body_waits_for_more_bytes() -> None:
    parser = EslParser()
    assert parser.feed(b"Content-Type: api/response\nContent-Length: 5\n\n+OK") == []
    (msg,) = parser.feed(b"\n\n")
    assert isinstance(msg, ApiResponse)
    assert msg.body == b"+OK\n\n"


def test_api_error_body_is_not_ok() -> None:
    (msg,) = EslParser().feed(
        b"Content-Type: api/response\nContent-Length: 21\n\n-ERR No such channel!"
    )
    assert isinstance(msg, ApiResponse)
    assert not msg.ok


def test_bgapi_reply_job_uuid_from_header_or_text() -> None:
    both = b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: abc\nJob-UUID: abc\n\n"
    text_only = b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: def\n\n"
    a, b = EslParser().feed(both + text_only)
    assert isinstance(a, CommandReply)
    assert a.job_uuid == "abc"
    assert isinstance(b, CommandReply)
    assert b.job_uuid == "def"


def test_err_reply_is_not_ok() -> None:
    (msg,) = EslParser().feed(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
    assert isinstance(msg, CommandReply)
    assert not msg.ok
    assert msg.job_uuid is None


def test_json_event_with_body_and_array_header() -> None:
    data = {
        "Event-Name": "BACKGROUND_JOB",
        "Job-UUID": "7f4d",
        "Job-Command": "originate",
        "variable_array": ["a", "b"],
        "_body": "+OK 1b6d\n",
    }
    body = json.dumps(data).encode()
    raw = b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(body) + body
    (event,) = EslParser().feed(raw)
    assert isinstance(event, EslEvent)
    assert event.name == "BACKGROUND_JOB"
    assert event.job_uuid == "7f4d"
    assert event.event_body == "+OK 1b6d\n"
    assert event.get("variable_array") == "ARRAY::a|:b"
    assert "_body" not in event.event_headers


def test_plain_event_with_inner_body() -> None:
    inner = b"Event-Name: BACKGROUND_JOB\nJob-UUID: 1\nContent-Length: 6\n\n+OK x\n"
    raw = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner
    (event,) = EslParser().feed(raw)
    assert isinstance(event, EslEvent)
    assert event.event_body == "+OK x\n"


def test_custom_event_subclass() -> None:
    body = json.dumps({"Event-Name": "CUSTOM", "Event-Subclass": "mod_audio_stream::play"})
    raw = b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(body) + body.encode()
    (event,) = EslParser().feed(raw)
    assert isinstance(event, EslEvent)
    assert event.subclass == "mod_audio_stream::play"


def test_log_and_rude_rejection_types() -> None:
    raw = (
        b"Content-Type: log/data\nContent-Length: 3\nLog-Level: 7\n\nabc"
        b"Content-Type: text/rude-rejection\nContent-Length: 4\n\ndeny"
    )
    log, rude = EslParser().feed(raw)
    assert isinstance(log, LogData)
    assert log.body == b"abc"
    assert log.headers["Log-Level"] == "7"
    assert isinstance(rude, RudeRejection)


def test_stray_newlines_between_packets_are_skipped() -> None:
    msgs = EslParser().feed(b"\n\nContent-Type: auth/request\n\n\nContent-Type: auth/request\n\n")
    assert len(msgs) == 2


@pytest.mark.parametrize(
    "raw",
    [
        b"Content-Type: api/response\nContent-Length: -1\n\n",
        b"Content-Type: api/response\nContent-Length: 12x\n\n",
        b"no colon here\n\n",
        b"Content-Type: text/event-json\nContent-Length: 3\n\n[1]",
        b"Content-Type: text/event-json\nContent-Length: 3\n\n{{{",
        b"Content-Type: api/response\nContent-Length: 999999999999\n\n",
    ],
)
def test_malformed_input_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(EslProtocolError):
        EslParser().feed(raw)


def test_unterminated_huge_header_block_is_refused() -> None:
    with pytest.raises(EslProtocolError):
        EslParser().feed(b"X: " + b"a" * 70000)


def test_serializers_byte_for_byte() -> None:
    assert encode_auth("s3cret") == b"auth s3cret\n\n"
    assert encode_api("status") == b"api status\n\n"
    assert encode_bgapi("originate x &park()", "u-1") == (
        b"bgapi originate x &park()\nJob-UUID: u-1\n\n"
    )
    assert encode_bgapi("status") == b"bgapi status\n\n"
    assert encode_event_subscription(["CHANNEL_ANSWER", "BACKGROUND_JOB"]) == (
        b"event json CHANNEL_ANSWER BACKGROUND_JOB\n\n"
    )
    assert encode_exit() == b"exit\n\n"
    assert encode_sendmsg(
        "abc",
        {
            "call-command": "execute",
            "execute-app-name": "playback",
            "execute-app-arg": "/tmp/a.wav",
        },
    ) == (
        b"sendmsg abc\ncall-command: execute\nexecute-app-name: playback\n"
        b"execute-app-arg: /tmp/a.wav\n\n"
    )
    assert encode_sendmsg(None, {"call-command": "hangup"}) == (
        b"sendmsg\ncall-command: hangup\n\n"
    )


@pytest.mark.parametrize("bad", ["x\n", "x\r", "x\x00", "a\n\napi system rm -rf /", "\r\n"])
def test_control_characters_are_refused_everywhere(bad: str) -> None:
    for encode in (encode_auth, encode_api, encode_bgapi):
        with pytest.raises(UnsafeWireValue):
            encode(bad)
    with pytest.raises(UnsafeWireValue):
        encode_bgapi("status", bad)
    with pytest.raises(UnsafeWireValue):
        encode_sendmsg("abc", {"execute-app-arg": bad})
    with pytest.raises(UnsafeWireValue):
        encode_command("sendmsg", {bad: "x"})


@pytest.mark.parametrize("names", [[], [""], ["CHANNEL ANSWER"], ["A\nB"]])
def test_event_names_must_be_words(names: list[str]) -> None:
    with pytest.raises(UnsafeWireValue):
        encode_event_subscription(names)


def test_header_names_cannot_contain_colon() -> None:
    with pytest.raises(UnsafeWireValue):
        encode_command("sendmsg", {"a: b": "c"})


def test_show_channels_json() -> None:
    text = json.dumps(
        {
            "row_count": 1,
            "rows": [
                {
                    "uuid": "u1",
                    "state": "CS_EXECUTE",
                    "callstate": "ACTIVE",
                    "direction": "outbound",
                    "cid_num": None,
                }
            ],
        }
    )
    (channel,) = parse_show_channels_json(text)
    assert (channel.uuid, channel.state, channel.call_state, channel.direction) == (
        "u1",
        "CS_EXECUTE",
        "ACTIVE",
        "outbound",
    )
    assert channel.raw["cid_num"] == ""
    assert parse_show_channels_json('{"row_count":0}\n') == []
    assert parse_show_channels_json('{"row_count": 0}\n') == []  # as 1.11.1 prints it
    with pytest.raises(EslProtocolError):
        parse_show_channels_json("-ERR oops")
