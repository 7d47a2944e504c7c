import json

import pytest

from voicedock.pbx.asterisk.ari.events import (
    AriEventError,
    ChannelDestroyed,
    ChannelStateChange,
    DialProgress,
    DtmfReceived,
    HangupRequest,
    OtherEvent,
    StasisStart,
    channel_from_json,
    parse_ari_event,
)

pytestmark = pytest.mark.unit

STASIS_START = {
    "type": "StasisStart",
    "timestamp": "2026-11-21T07:57:09.974+0000",
    "args": ["outbound", "call-1"],
    "channel": {
        "id": "call-1",
        "name": "PJSIP/carrier-0000005e",
        "state": "Up",
        "caller": {"name": "", "number": "+31850835037"},
        "dialplan": {"context": "default", "exten": "s", "priority": 1},
    },
    "asterisk_id": "02:fc:00:00:00:01",
    "application": "voicedock",
}


def test_stasis_start_args_and_channel():
    event = parse_ari_event(json.dumps(STASIS_START))
    assert isinstance(event, StasisStart)
    assert event.args == ("outbound", "call-1")
    assert event.channel.id == "call-1"
    assert event.channel.caller_number == "+31850835037"
    assert event.replace_channel_id is None
    assert event.application == "voicedock"


def test_stasis_start_accepts_bytes_and_replace_channel():
    data = dict(STASIS_START, replace_channel={"id": "ws-leg"})
    event = parse_ari_event(json.dumps(data).encode())
    assert isinstance(event, StasisStart)
    assert event.replace_channel_id == "ws-leg"


def test_channel_destroyed_carries_q850_and_sip_code():
    frame = {
        "type": "ChannelDestroyed",
        "cause": 17,
        "cause_txt": "User busy",
        "tech_cause": 486,
        "channel": {"id": "call-2", "state": "Down"},
    }
    event = parse_ari_event(json.dumps(frame))
    assert event == ChannelDestroyed(
        channel=event.channel, cause=17, cause_txt="User busy", tech_cause=486
    )
    assert isinstance(event, ChannelDestroyed)
    assert event.channel.id == "call-2"


def test_a_hangup_request_carries_its_soft_flag():
    frame = {"type": "ChannelHangupRequest", "cause": 32, "soft": True, "channel": {"id": "c"}}
    event = parse_ari_event(json.dumps(frame))
    assert isinstance(event, HangupRequest)
    assert event.soft is True
    hard = parse_ari_event(json.dumps({**frame, "cause": 16, "soft": False}))
    assert isinstance(hard, HangupRequest)
    assert (hard.soft, hard.cause) == (False, 16)


def test_dial_and_state_change_and_dtmf():
    dial = parse_ari_event(
        json.dumps({"type": "Dial", "dialstatus": "RINGING", "peer": {"id": "call-3"}})
    )
    assert dial == DialProgress(peer=dial.peer, dialstatus="RINGING")  # type: ignore[union-attr]
    state = parse_ari_event(
        json.dumps({"type": "ChannelStateChange", "channel": {"id": "x", "state": "Ringing"}})
    )
    assert isinstance(state, ChannelStateChange)
    assert state.channel.state == "Ringing"
    dtmf = parse_ari_event(
        json.dumps(
            {
                "type": "ChannelDtmfReceived",
                "digit": "#",
                "duration_ms": 100,
                "channel": {"id": "x"},
            }
        )
    )
    assert dtmf == DtmfReceived(channel=dtmf.channel, digit="#", duration_ms=100)  # type: ignore[union-attr]


def test_unknown_event_type_is_kept_not_rejected():
    event = parse_ari_event(json.dumps({"type": "BridgeCreated", "bridge": {"id": "b"}}))
    assert isinstance(event, OtherEvent)
    assert event.type == "BridgeCreated"


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[]",
        '{"no_type": 1}',
        '{"type": 5}',
        '{"type": "StasisStart", "args": []}',
        '{"type": "StasisStart", "args": "a,b", "channel": {"id": "x"}}',
        '{"type": "ChannelDestroyed", "channel": {"id": ""}}',
        '{"type": "ChannelDtmfReceived", "digit": "12", "channel": {"id": "x"}}',
        b"\xff\xfe",
    ],
)
def test_malformed_frames_raise_ari_event_error(frame):
    with pytest.raises(AriEventError):
        parse_ari_event(frame)


def test_wrong_types_in_optional_fields_degrade_to_none():
    frame = {"type": "ChannelDestroyed", "cause": "x", "tech_cause": True, "channel": {"id": "c"}}
    event = parse_ari_event(json.dumps(frame))
    assert isinstance(event, ChannelDestroyed)
    assert event.cause is None
    assert event.tech_cause is None


def test_a_channel_listed_by_rest_is_the_channel_of_the_events_with_its_dialplan_app():
    listed = {
        **STASIS_START["channel"],
        "dialplan": {
            "context": "voicedock-node",
            "exten": "s",
            "priority": 12,
            "app_name": "Stasis",
            "app_data": "voicedock-a,inbound,+31850835037",
        },
    }
    channel = channel_from_json(listed)
    assert channel is not None
    assert (channel.id, channel.state, channel.caller_number) == ("call-1", "Up", "+31850835037")
    assert (channel.dialplan_context, channel.dialplan_app_name) == ("voicedock-node", "Stasis")
    assert channel.dialplan_app_data == "voicedock-a,inbound,+31850835037"
    assert channel_from_json({"name": "no id"}) is None
    assert channel_from_json(["not", "an", "object"]) is None
